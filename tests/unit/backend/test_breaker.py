"""CircuitBreaker state machine, driven by an explicit clock."""

from __future__ import annotations

import pytest

from backend.breaker import BreakerState, CircuitBreaker, CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[bool]:
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[bool]) -> CircuitBreaker:
    return CircuitBreaker(failures=3, reset_s=2.0, on_change=changes.append, clock=clock)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record(ok=False)


def test_opens_after_consecutive_failures_only(
    breaker: CircuitBreaker, changes: list[bool]
) -> None:
    fail(breaker, 2)
    breaker.before_call()
    breaker.record(ok=True)  # a success resets the count
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert changes == [True]


def test_open_circuit_fails_fast_with_retry_hint(breaker: CircuitBreaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 0.5
    with pytest.raises(CircuitOpenError) as raised:
        breaker.before_call()
    assert raised.value.retry_after_s == pytest.approx(1.5)


def test_half_open_lets_one_probe_through_and_closes_on_success(
    breaker: CircuitBreaker, clock: Clock, changes: list[bool]
) -> None:
    fail(breaker, 3)
    clock.now += 2.0
    breaker.before_call()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # everyone else still fails fast
    breaker.record(ok=True)
    assert breaker.state is BreakerState.CLOSED
    assert changes == [True, False]
    breaker.before_call()


def test_failed_probe_reopens_for_another_period(
    breaker: CircuitBreaker, clock: Clock, changes: list[bool]
) -> None:
    fail(breaker, 3)
    clock.now += 2.0
    breaker.before_call()
    breaker.record(ok=False)
    assert breaker.state is BreakerState.OPEN
    clock.now += 1.0
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.now += 1.0
    breaker.before_call()
    assert breaker.state is BreakerState.HALF_OPEN
    assert changes == [True]  # still open throughout: no flapping of the gauge


def test_a_probe_that_never_reports_is_replaced(breaker: CircuitBreaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 2.0
    breaker.before_call()  # probe lost (e.g. cancelled)
    clock.now += 2.0
    breaker.before_call()  # a new probe is allowed
    breaker.record(ok=True)
    assert breaker.state is BreakerState.CLOSED


def test_calls_sharing_one_use_count_one_by_one(
    breaker: CircuitBreaker, changes: list[bool]
) -> None:
    for _ in range(2):
        breaker.before_call()  # two coalesced reads, each let through on its own ...
    breaker.record(ok=False, calls=2)  # ... fail together
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)  # the third consecutive failure opens it
    assert breaker.state is BreakerState.OPEN
    assert changes == [True]
