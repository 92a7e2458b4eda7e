"""lab.manifests: rendering what the kind target applies and finding objects in it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from lab import manifests
from lab.errors import LabError
from lab.manifests import kubectl
from lab.settings import get_settings

KIND = manifests.render("kind", get_settings())


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
        manifests.render("minikube", get_settings())


def test_render_needs_no_kubectl_on_path(path_without_kubectl: str) -> None:
    """`ironclad-lab render` on a machine where only the `lab` extra brought kubectl: with the
    scripts directory off PATH too, the lab finds the extra's kubectl through its package."""
    bare = os.pathsep.join(path_without_kubectl.split(os.pathsep)[1:])  # the links alone
    done = subprocess.run(
        [sys.executable, "-m", "lab", "render", "--namespace", "no-kubectl"],
        env={**os.environ, "PATH": bare},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert {"Namespace", "Deployment", "StatefulSet"} <= {obj["kind"] for obj in objects}
    assert Path(kubectl()).parent == Path(sysconfig.get_path("scripts"))
