"""The local supervisor's crash back-off: the kubelet's curve (lab.targets.backoff)."""

from __future__ import annotations

import pytest

from lab.targets.backoff import MAX_S, RESET_S, CrashBackOff

pytestmark = pytest.mark.unit

FIRST_STEP = 15.0


def crash_loop(backoff: CrashBackOff, crashes: int, ran_s: float = 1.0) -> list[float]:
    """The delay before each of `crashes` restarts of a replica that runs `ran_s` s each time."""
    now, delays = 0.0, []
    for _ in range(crashes):
        exited_at = now + ran_s
        delay = backoff.delay(exited_at, FIRST_STEP)
        delays.append(delay)
        now = exited_at + delay
        backoff.restarted(exited_at, now)
    return delays


def test_the_first_crash_restarts_at_once_then_the_back_off_doubles_up_to_the_cap() -> None:
    assert crash_loop(CrashBackOff(), 8) == [0, 15, 30, 60, 120, 240, MAX_S, MAX_S]


def test_a_replica_that_ran_longer_than_the_reset_window_starts_the_curve_over() -> None:
    backoff = CrashBackOff()
    assert crash_loop(backoff, 3) == [0, 15, 30]
    last = backoff.last_restart
    assert backoff.delay(last + RESET_S, FIRST_STEP) == 60  # within the window: still backed off
    assert backoff.delay(last + RESET_S + 1, FIRST_STEP) == 0  # ran long enough: a first crash
    backoff.restarted(last + RESET_S + 1, last + RESET_S + 1)
    assert backoff.delay(last + RESET_S + 2, FIRST_STEP) == FIRST_STEP


def test_a_first_step_longer_than_the_cap_is_kept_and_zero_never_waits() -> None:
    long = CrashBackOff()
    long.restarted(0.0, 0.0)
    assert long.delay(1.0, 3600.0) == 3600.0
    assert crash_loop(CrashBackOff(), 4, ran_s=0.1) == [0, 15, 30, 60]
    none = CrashBackOff()
    none.restarted(0.0, 0.0)
    assert none.delay(1.0, 0.0) == 0.0
