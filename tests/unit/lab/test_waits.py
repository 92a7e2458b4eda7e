"""lab.waits.poll: returns the probe's value, explains timeouts, lets LabError through."""

from __future__ import annotations

import itertools

import pytest

from lab.errors import LabError, LabTimeoutError
from lab.waits import poll


def test_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert (
        poll(
            lambda: next(counter) >= 3 and "ready",
            what="x",
            timeout=5,
            interval=0.001,
            progress=False,
        )
        == "ready"
    )


def test_timeout_reports_the_last_error_and_the_diagnostics() -> None:
    def probe() -> None:
        raise ConnectionRefusedError("port 1 refused")

    with pytest.raises(LabTimeoutError) as info:
        poll(
            probe,
            what="the backend",
            timeout=0.05,
            interval=0.01,
            progress=False,
            diagnose=lambda: "pod a: CrashLoopBackOff",
            next_step="Read the log.",
        )
    error = info.value
    assert error.what == "the backend"
    assert error.detail == (
        "last error: ConnectionRefusedError: port 1 refused\npod a: CrashLoopBackOff"
    )
    assert error.next_step == "Read the log."


def test_a_failing_diagnosis_does_not_hide_the_timeout() -> None:
    def broken() -> str:
        raise RuntimeError("API down")

    with pytest.raises(LabTimeoutError, match=r"diagnostics failed: API down"):
        poll(lambda: False, what="x", timeout=0.02, interval=0.01, progress=False, diagnose=broken)


def test_lab_errors_are_raised_at_once() -> None:
    calls = []

    def probe() -> None:
        calls.append(1)
        raise LabError("backend-0 exited with code 3.", "Read its log.")

    with pytest.raises(LabError, match="exited with code 3"):
        poll(probe, what="x", timeout=30, progress=False)
    assert calls == [1]
