"""Rendered manifests shared by the offline checks (kubectl kustomize runs once per directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import manifests
from lab.settings import get_settings

SETTINGS = get_settings()


@pytest.fixture(scope="session")
def rendered() -> dict[Path, list[manifests.Obj]]:
    """Every Kustomization directory rendered with kubectl kustomize (components via overlays)."""
    return {d: manifests.build(d) for d in manifests.kustomizations(SETTINGS.manifests)}


@pytest.fixture(scope="session")
def kind_objects(rendered: dict[Path, list[manifests.Obj]]) -> list[manifests.Obj]:
    """What the lab applies to kind."""
    return rendered[SETTINGS.manifests / "overlays" / "kind"]
