"""A small asyncio-friendly circuit breaker: closed → open → half-open (one probe) → closed."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(Exception):
    """Raised instead of calling the dependency while the circuit is open."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"circuit open; next probe in {retry_after_s:.1f} s")


class CircuitBreaker:
    """Opens after `failures` consecutive failures; after `reset_s` lets one probe call through.

    A successful probe closes the circuit, a failed one reopens it for another `reset_s`;
    other callers fail fast with CircuitOpenError while the circuit is open or half-open.
    Usage: `breaker.before_call()`, then `breaker.record(ok)` once the call finished.
    `on_change(open: bool)` is called on every transition into or out of the open state.
    """

    def __init__(
        self,
        failures: int,
        reset_s: float,
        on_change: Callable[[bool], None] = lambda _open: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self._on_change = on_change
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        return self._state

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go through now."""
        if self._state is BreakerState.CLOSED:
            return
        now = self._clock()
        waited = now - self._opened_at
        if waited < self.reset_s:
            raise CircuitOpenError(self.reset_s - waited)
        # This caller is the probe; a probe that never reports back is replaced after reset_s.
        self._state = BreakerState.HALF_OPEN
        self._opened_at = now

    def record(self, ok: bool, calls: int = 1) -> None:
        """Record the outcome of `calls` calls that `before_call` let through, each on its own,
        and that then shared one use of the dependency (coalesced reads): they count as
        `calls` consecutive successes or failures."""
        if ok:
            self._consecutive = 0
            if self._state is not BreakerState.CLOSED:
                self._state = BreakerState.CLOSED
                self._on_change(False)
            return
        self._consecutive += calls
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._consecutive >= self.failures
        ):
            was_open = self._state is BreakerState.HALF_OPEN
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            if not was_open:
                self._on_change(True)
