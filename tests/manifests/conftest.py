"""Rendered manifests shared by the offline checks (kubectl kustomize runs once per directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import lint


@pytest.fixture(scope="session")
def rendered() -> dict[Path, list[lint.Obj]]:
    """Every Kustomization directory rendered with kubectl kustomize (components via overlays)."""
    return {d: lint.build(d) for d in lint.kustomizations()}


@pytest.fixture(scope="session")
def kind_objects(rendered: dict[Path, list[lint.Obj]]) -> list[lint.Obj]:
    """What the lab applies to kind."""
    return rendered[lint.MANIFESTS_DIR / "overlays" / "kind"]
