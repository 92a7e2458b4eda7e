"""08-schedule: the verifier runs the learner's cron schedule over four weeks of calendar and
rejects the plausible wrong ones: too sparse, nights or weekends unprotected, more backups than
the recovery point needs, and what cron would not read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from lab import exercises
from lab.exercises.lesson08 import longest_gap, runs

from .conftest import rejected


def test_the_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("08-schedule")
    assert result.status == "passed"
    assert "672 backups in 4 weeks, longest stretch without one 60 minutes" in result.seen


@pytest.mark.parametrize(
    "right",
    ["17 * * * *", "@hourly", "*/60 * * * *", "0 0-23 * * 0-7", "0 * 1-31 * 1-5"],  # cron: OR
)
def test_any_hourly_schedule_passes(right: str) -> None:
    assert exercises.verify("08-schedule", right).status == "passed"


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        ("0 */2 * * *", "longest stretch without one 120 minutes"),
        ("@daily", "1440 minutes"),
        ("0 8-20 * * *", "writes of up to that long could be lost"),  # nights unprotected
        ("0 * * * 1-5", "2940 minutes"),  # the weekend: Friday 23:00 to Monday 00:00
        ("*/30 * * * *", "672 more backups than it needs"),
        ("0,59 * * * *", "more backups than it needs"),
        ("0 * 1-15 * *", "could be lost"),  # the second half of every month unprotected
        ("60 * * * *", "minute: '60' is outside 0-59"),
        ("0 * * *", "4 fields"),
        ("*/0 * * * *", "never advances"),
        (3600, "not a cron schedule"),
    ],
)
def test_a_plausible_wrong_schedule_is_rejected(wrong: object, seen: str) -> None:
    failed = rejected("08-schedule", wrong)
    assert seen in failed.seen
    feedback = f"{failed.seen} {failed.hint}".replace(repr(wrong), "")
    assert "0 * * * *" not in feedback  # the feedback teaches, never tells


def test_the_gap_wraps_around_the_end_of_the_span() -> None:
    fired = runs("0 12 * * *")  # noon every day: a day between two, also across the end
    assert len(fired) == 28
    assert longest_gap(fired) == timedelta(days=1)
    assert longest_gap([]) == timedelta(weeks=4)
