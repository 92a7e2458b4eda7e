"""Run a solution file (notebooks/solutions/ID.py) the way `lab run --solutions` runs its cell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab import exercises, manifests
from lab.errors import ExerciseFailedError
from lab.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[4]


def _exec_solution(exercise: str, verify: Callable[..., Any]) -> None:
    """Execute the solved cell of an exercise with `verify` standing in for `lab.verify`."""
    source = exercises.solution_path(exercise, REPO_ROOT).read_text()
    exec(compile(source, f"{exercise}.py", "exec"), {"lab": SimpleNamespace(verify=verify)})


@pytest.fixture
def run_solution() -> Callable[[str], list[exercises.Result]]:
    """Execute the solved cell of an exercise; return the results its `lab.verify` calls gave."""

    def run(exercise: str) -> list[exercises.Result]:
        results: list[exercises.Result] = []

        def verify(*args: Any, **kwargs: Any) -> exercises.Result:
            results.append(exercises.verify(*args, **kwargs))  # the real verifier
            return results[-1]

        _exec_solution(exercise, verify)
        return results

    return run


@pytest.fixture
def solved_answer() -> Callable[[str], Any]:
    """The answer a solution passes to `lab.verify` (to derive plausible wrong answers from)."""

    def answer(exercise: str) -> Any:
        answers: list[Any] = []
        _exec_solution(exercise, lambda _id, value, **_: answers.append(value))
        return answers[0]

    return answer


@pytest.fixture(scope="session")
def kind_objects() -> list[manifests.Obj]:
    """What `lab up --target kind` applies (one `kubectl kustomize` per test session)."""
    return manifests.render("kind", get_settings())


def rejected(exercise: str, answer: Any, **context: Any) -> ExerciseFailedError:
    """Verify a wrong `answer`: it must be refused with what was seen and a hint that teaches
    (never with a traceback through `lab`: the error renders as the verdict and hint alone)."""
    with pytest.raises(ExerciseFailedError) as failed:
        exercises.verify(exercise, answer, **context)
    error = failed.value
    assert error.seen
    assert len(error.hint) > 20, f"{exercise}: no hint for {answer!r}"
    rendered = "\n".join(error._render_traceback_())
    assert error.hint in rendered
    assert "Traceback" not in rendered
    return error
