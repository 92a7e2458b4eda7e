"""The exercise contract: untouched answers are "not attempted", wrong ones raise with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import exercises
from lab.errors import ExerciseFailedError, LabError

HINT = "A PDB counts ready pods: think about how many may go at once."


@exercises.verifier("zz-test-min-available", hint=HINT)
def _min_available(answer: int, replicas: int = 3) -> exercises.Outcome:
    return exercises.Outcome(0 < answer < replicas, f"minAvailable={answer}")


def test_untouched_answer_is_not_attempted() -> None:
    result = exercises.verify("zz-test-min-available")
    assert result.status == "not attempted"
    bundle = result.bundle()
    assert bundle[exercises.MIMETYPE]["passed"] is False  # type: ignore[index]
    assert "lab.solution('zz-test-min-available')" in str(bundle["text/plain"])


def test_right_answer_passes_and_is_counted() -> None:
    result = exercises.verify("zz-test-min-available", 2)
    assert result.status == "passed"
    assert result.bundle()[exercises.MIMETYPE] == {
        "exercise": "zz-test-min-available",
        "passed": True,
        "status": "passed",
        "seen": "minAvailable=2",
    }


@pytest.mark.parametrize("wrong", [3, 0])
def test_wrong_answer_raises_with_the_concept_hint(wrong: int) -> None:
    with pytest.raises(ExerciseFailedError) as info:
        exercises.verify("zz-test-min-available", wrong)
    assert info.value.hint == HINT
    assert f"minAvailable={wrong}" in str(info.value)


def test_context_reaches_the_verifier() -> None:
    assert exercises.verify("zz-test-min-available", 3, replicas=4).status == "passed"


def test_unknown_exercise_says_what_to_do() -> None:
    with pytest.raises(LabError, match="no exercise 'zz-nope'"):
        exercises.verify("zz-nope", 1)


def test_a_second_verifier_for_one_id_is_refused() -> None:
    with pytest.raises(LabError, match="two verifiers"):
        exercises.verifier("zz-test-min-available", hint="")(_min_available)


def test_solution_reads_the_file(tmp_path: Path) -> None:
    path = exercises.solution_path("zz-test-min-available", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("min_available = 2\n")
    assert exercises.solution("zz-test-min-available", tmp_path) == "min_available = 2\n"
    with pytest.raises(LabError, match="No solution file"):
        exercises.solution("zz-other", tmp_path)


def test_a_wrong_answer_shows_the_hint_alone_in_ipython() -> None:
    """In a notebook a refused answer reads as verdict + hint, with no traceback through lab."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    with capture_output() as shown:
        shell.run_cell("from lab import exercises\nexercises.verify('zz-test-min-available', 0)")
    assert "minAvailable=0" in shown.stdout
    assert HINT in shown.stdout
    assert "Traceback" not in shown.stdout
    assert "exercises/__init__.py" not in shown.stdout
    assert "not yet" in shown.stdout  # said in words, not only by a symbol


def test_every_exercise_has_wrong_answer_tests() -> None:
    """Verify never passes a wrong answer: each exercise's tests feed it some (issue 22)."""
    root = Path(__file__).resolve().parents[3]
    ids = sorted(p.stem for p in (root / exercises.SOLUTIONS_DIR).glob("*.py"))
    tests = [p.read_text() for p in (root / "tests").rglob("test_lesson*.py")]
    untested = [
        i
        for i in ids
        if not any(i in t and ("rejected(" in t or "ExerciseFailedError" in t) for t in tests)
    ]
    assert len(ids) >= 8
    assert not untested, f"no wrong-answer test for {untested}"
