"""lab.manifests: rendering what the kind target applies and finding objects in it."""

from __future__ import annotations

import pytest
import yaml

from lab import manifests
from lab.errors import LabError

KIND = manifests.render("kind")


def test_find_returns_the_object_or_names_what_is_missing() -> None:
    backend = manifests.find(KIND, "Deployment", "backend")
    assert manifests.ident(backend) == ("Deployment", "ironclad-demo", "backend")
    assert manifests.find(KIND, "Deployment", "backend", namespace="ironclad-demo") is backend
    with pytest.raises(KeyError, match="no Deployment/frontend"):
        manifests.find(KIND, "Deployment", "frontend")
    with pytest.raises(KeyError):
        manifests.find(KIND, "Deployment", "backend", namespace="elsewhere")


def test_to_yaml_round_trips_the_rendered_objects() -> None:
    assert [o for o in yaml.safe_load_all(manifests.to_yaml(KIND)) if o] == KIND


def test_unknown_render_name_says_what_exists() -> None:
    with pytest.raises(LabError, match="Use one of: base, cluster, kind"):
        manifests.render("minikube")
