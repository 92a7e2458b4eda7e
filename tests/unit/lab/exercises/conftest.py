"""Run a solution file (notebooks/solutions/ID.py) the way `lab run --solutions` runs its cell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab import exercises

REPO_ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def run_solution() -> Callable[[str], list[exercises.Result]]:
    """Execute the solved cell of an exercise; return the results its `lab.verify` calls gave."""

    def run(exercise: str) -> list[exercises.Result]:
        results: list[exercises.Result] = []

        def verify(*args: Any, **kwargs: Any) -> exercises.Result:
            results.append(exercises.verify(*args, **kwargs))  # the real verifier
            return results[-1]

        source = exercises.solution_path(exercise, REPO_ROOT).read_text()
        exec(compile(source, f"{exercise}.py", "exec"), {"lab": SimpleNamespace(verify=verify)})
        return results

    return run
