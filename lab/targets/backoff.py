"""The kubelet's crash back-off, for the local target's replica supervisor.

The kubelet restarts a container that crashed for the first time at once; each crash after
that waits out a back-off that doubles (10 s, 20 s, 40 s … capped at 300 s): the pod shows
`CrashLoopBackOff` meanwhile. A container that ran 10 minutes since its last restart starts
over (kubelet `doBackOff` with client-go's `flowcontrol.Backoff`: an entry expires after twice
its cap). The local supervisor keeps one `CrashBackOff` per replica: its first step is
`LAB_RESTART_DELAY` (15 s: lesson 07's alerts need a crash-looping replica down that long),
and its reset window is 30 s instead of the kubelet's 10 minutes: long enough for a restarted
replica to start on a busy machine, so that a kill as soon as it listens counts as a crash in a
row (07's crash loop), short enough that a lesson, or a cell run again, starts from a first
crash. A replica that exits cleanly (code 0: a drained replica, the rolling update's analog)
is replaced at once and leaves it untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_S = 300.0  # the kubelet's cap on the back-off
RESET_S = 30.0  # running this long since the last crash restart starts the curve over


@dataclass
class CrashBackOff:
    """One replica's back-off: how many crash restarts in a row, and when the last one was."""

    streak: int = 0
    last_restart: float = 0.0

    def delay(self, exited_at: float, first_step: float) -> float:
        """Seconds to wait before restarting a replica that crashed at `exited_at` (monotonic):
        0 for a first crash, else `first_step` doubled once per crash restart before it (up to
        the cap, or `first_step` if that is longer)."""
        if self._first(exited_at):
            return 0.0
        return min(first_step * 2.0 ** (self.streak - 1), max(first_step, MAX_S))

    def restarted(self, exited_at: float, now: float) -> None:
        """Record the restart, at `now`, of the crash at `exited_at`."""
        self.streak = 1 if self._first(exited_at) else self.streak + 1
        self.last_restart = now

    def _first(self, exited_at: float) -> bool:
        """A crash at `exited_at` counts as a first one: none restarted yet, or it ran longer
        than RESET_S since the last restart."""
        return self.streak == 0 or exited_at - self.last_restart > RESET_S
