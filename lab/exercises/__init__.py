"""Exercises: code cells tagged `exercise` that the learner completes and `lab.verify` checks.

An exercise cell carries the tag `exercise` and the cell metadata `{"ironclad": {"exercise": ID}}`
(ID like "05-pdb"). It holds the learner's part (a value left as `...` until they write it) and
ends with `lab.verify(ID, answer, env=env)`. Each lesson owns its verifiers in
`lab/exercises/lessonNN.py` (NN = the ID's first two characters, a lesson of `lab.lessons`),
registered with `@verifier`.
The solution of ID is `notebooks/solutions/ID.py`: the whole cell as it looks when solved
(`lab.solution(ID)` shows it; `python -m lab run --solutions` runs it instead of the cell).

`verify` never passes a wrong answer and never fails an untouched one: `...` reads as "not
attempted yet" (a notebook run without solutions stays green and counts no exercise).
A verifier checks the *result* (the rendered object, the query's data, the alert's state), and
its hint points at the concept, not at the answer. Hints are marked `N_()` where registered and
shown in the learner's language (lab.i18n); a verifier's `Outcome` texts are translated as it
builds them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.checks import publish
from lab.errors import ExerciseFailedError, LabError
from lab.i18n import _
from lab.lessons import LESSONS

__all__ = [
    "MIMETYPE",
    "Outcome",
    "Result",
    "solution",
    "solution_path",
    "verifier",
    "verify",
]

MIMETYPE = "application/vnd.ironclad.exercise+json"
TAG = "exercise"
METADATA_KEY = "exercise"  # cell.metadata["ironclad"]["exercise"] = ID
SOLUTIONS_DIR = Path("notebooks") / "solutions"  # relative to the repository root


@dataclass(frozen=True)
class Outcome:
    """What a verifier saw: whether the answer holds, what it saw, and (optionally) a hint
    more specific than the verifier's default one."""

    passed: bool
    seen: str
    hint: str = ""


@dataclass(frozen=True)
class Result:
    """The verdict `verify` displays and returns."""

    exercise: str
    status: str  # "passed" or "not attempted"
    seen: str = ""

    def _ipython_display_(self) -> None:
        """Nothing: verify() already displayed it."""

    def bundle(self) -> dict[str, object]:
        """The IPython display bundle the report counts (only `passed` counts)."""
        if self.status != "passed":
            text = _(
                "✍️ exercise {exercise}: not attempted — replace the `...` and run the cell "
                "again; stuck? {call}"
            )
        elif self.seen:
            text = _("🎯 exercise {exercise}: passed (seen: {seen})")
        else:
            text = _("🎯 exercise {exercise}: passed")
        call = f"lab.solution({self.exercise!r})"
        return {
            "text/plain": text.format(exercise=self.exercise, seen=self.seen, call=call),
            MIMETYPE: {
                "exercise": self.exercise,
                "passed": self.status == "passed",
                "status": self.status,
                "seen": self.seen,
            },
        }


Verifier = Callable[..., Outcome]


@dataclass(frozen=True)
class _Registered:
    check: Verifier
    hint: str


_VERIFIERS: dict[str, _Registered] = {}


def verifier(exercise: str, *, hint: str) -> Callable[[Verifier], Verifier]:
    """Register `check(answer, **context) -> Outcome` as the verifier of `exercise`; `hint`
    is marked with `N_()` (shown translated)."""

    def register(check: Verifier) -> Verifier:
        if exercise in _VERIFIERS:
            raise LabError(
                _("Exercise {exercise!r} has two verifiers.").format(exercise=exercise),
                _("Keep exactly one."),
            )
        _VERIFIERS[exercise] = _Registered(check, hint)
        return check

    return register


def _registered(exercise: str) -> _Registered:
    row = next((r for r in LESSONS if exercise.startswith(f"{r.id}-")), None)
    if exercise not in _VERIFIERS and row is not None:
        module = f"lab.exercises.lesson{row.id}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    if exercise not in _VERIFIERS:
        raise LabError(
            _("There is no exercise {exercise!r}.").format(exercise=exercise),
            _("Check the exercise id in the cell (it is in the cell's first comment line)."),
        )
    return _VERIFIERS[exercise]


def session_objects() -> list[dict[str, Any]]:
    """What the verifiers check the learner's change against: the kind overlay, rendered for
    the session's namespace (the notebook's `lab.connect()`, else the settings')."""
    from lab.manifests import render
    from lab.session import session_settings

    return render("kind", session_settings())


def verify(exercise: str, answer: Any = ..., **context: Any) -> Result:
    """Check the learner's `answer` to `exercise`; raise ExerciseFailedError with a hint if wrong.

    `answer` left as `...` means "not attempted yet": shown as such, nothing raised.
    """
    registered = _registered(exercise)
    if answer is ...:
        result = Result(exercise, "not attempted")
    else:
        outcome = registered.check(answer, **context)
        if not outcome.passed:
            raise ExerciseFailedError(exercise, outcome.seen, outcome.hint or _(registered.hint))
        result = Result(exercise, "passed", outcome.seen)
    publish(result.bundle())
    return result


def solution_path(exercise: str, repo_root: Path) -> Path:
    """Where the solution of `exercise` lives."""
    return repo_root / SOLUTIONS_DIR / f"{exercise}.py"


def solution(exercise: str, repo_root: Path | None = None) -> str:
    """The solved cell of `exercise` (shown as code in a notebook): try first, peek second."""
    if repo_root is None:
        from lab.session import session_settings

        repo_root = session_settings().repo_root
    path = solution_path(exercise, repo_root)
    if not path.is_file():
        raise LabError(
            _("No solution file for exercise {exercise!r} ({path}).").format(
                exercise=exercise, path=path
            ),
            _("Check the id; solutions live in notebooks/solutions/."),
        )
    text = path.read_text()
    publish({"text/plain": text, "text/markdown": f"```python\n{text}\n```"})
    return text
