"""Shared by the lesson exercise tests: the kind render (kubectl kustomize, once) and a way to
run a solution file the way `python -m lab run --solutions` runs it: as the exercise cell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lab
from lab import exercises, manifests
from lab.manifests import Obj

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="session")
def kind_objects() -> list[Obj]:
    return manifests.render("kind")


def _run_solution(exercise: str) -> dict[str, Any]:
    """Execute notebooks/solutions/<exercise>.py as its cell; return the namespace it left
    (its `lab.verify` raises ExerciseFailedError if the solution does not pass)."""
    path = exercises.solution_path(exercise, REPO)
    namespace: dict[str, Any] = {"lab": lab, "env": None}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


@pytest.fixture
def run_solution() -> Callable[[str], dict[str, Any]]:
    return _run_solution


@pytest.fixture
def repo() -> Path:
    return REPO
