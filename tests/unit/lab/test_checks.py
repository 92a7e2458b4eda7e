"""lab.check: the display bundle the runner counts, and the learner-facing failure."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from lab.checks import MIMETYPE, CheckFailedError, CheckResult, check, describe
from lab.errors import LabError


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A real IPython shell, as in a kernel (cleared afterwards)."""
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_passing_check_publishes_the_bundle_under_ipython(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        result = check(3 == 3, expected="3 replicas ready", seen=3)
    assert result == CheckResult(expected="3 replicas ready", seen="3")
    [output] = captured.outputs
    assert output.data["text/plain"] == "✅ [pass] 3 replicas ready (seen: 3)"
    assert output.data[MIMETYPE] == {"passed": True, "expected": "3 replicas ready", "seen": "3"}


def test_a_cell_ending_in_a_check_shows_it_once(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_cell("from lab.checks import check\ncheck(True, expected='once', seen=1)")
    assert [output.data[MIMETYPE]["expected"] for output in captured.outputs] == ["once"]
    assert "CheckResult" not in captured.stdout


def test_failing_check_raises_with_expected_seen_and_hint(shell: InteractiveShell) -> None:
    with capture_output() as captured, pytest.raises(CheckFailedError) as info:
        check(False, expected="HighErrorRate firing", seen="inactive", hint="Inject errors first.")
    assert captured.outputs == []
    error = info.value
    assert isinstance(error, LabError)
    assert (error.expected, error.seen, error.hint) == (
        "HighErrorRate firing",
        "inactive",
        "Inject errors first.",
    )
    assert "expected HighErrorRate firing, but saw inactive" in str(error)
    assert "Inject errors first." in str(error)


def test_check_outside_ipython_just_returns() -> None:
    assert InteractiveShell.initialized() is False
    assert check([1], expected="a non-empty list", seen=[1]).seen == "[1]"


def test_describe_keeps_long_values_on_one_short_line() -> None:
    text = describe("x\n" * 1000)
    assert "\n" not in text
    assert len(text) < 320
    assert " … " in text


def test_describe_shows_numpy_numbers_as_numbers() -> None:
    assert (
        describe({"p95 ms": np.float64(24.36), "n": [np.int64(3)]}) == "{'p95 ms': 24.36, 'n': [3]}"
    )


def test_describe_keeps_whole_entries_of_a_long_mapping() -> None:
    timeline = {f"alert {i} firing": f"{i * 1.5:.1f} s" for i in range(30)}
    text = describe(timeline)
    assert len(text) < 320
    assert text.startswith("{'alert 0 firing': '0.0 s',")
    assert text.endswith(" more}")
    assert "…" in text
    kept = text.split(", … ")[0]
    assert kept.endswith("s'")  # the last entry shown is whole, not cut mid-word
