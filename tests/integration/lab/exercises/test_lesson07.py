"""Lesson 07 against a REAL local lab: the chaos-parameters exercise runs its experiment on the
replicas and reads the alert states from Prometheus (lab-scale rules); and the HighErrorRate
runbook's own queries confirm an injected fault."""

from __future__ import annotations

import pytest

from lab import load
from lab.errors import ExerciseFailedError
from lab.exercises import verify
from lab.runbooks import Runbook
from lab.session import Lab

# lessons 06 and 07 share one lab (`lab_env`, conftest.py): one xdist worker runs them both
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lab_env")]


def test_the_solution_fires_high_latency_only(lab_env: Lab) -> None:
    result = verify("07-latency-alert", {"latency_ms": 600, "error_ratio": 0.0}, env=lab_env)
    assert result.status == "passed"
    assert "also pending/firing: none" in result.seen
    assert lab_env.chaos.status()["enabled"].eq(False).all()  # rolled back


def test_too_little_latency_does_not_fire(lab_env: Lab) -> None:
    with pytest.raises(ExerciseFailedError, match="did not fire") as failed:
        verify("07-latency-alert", {"latency_ms": 300, "error_ratio": 0.0}, env=lab_env)
    assert "500 ms" in failed.value.hint
    assert lab_env.chaos.status()["enabled"].eq(False).all()


def test_errors_wake_the_availability_alerts(lab_env: Lab) -> None:
    with pytest.raises(ExerciseFailedError, match="HighErrorRate") as failed:
        verify("07-latency-alert", {"latency_ms": 600, "error_ratio": 0.2}, env=lab_env)
    assert "1.44 %" in failed.value.hint  # the threshold that teaches


def test_the_runbook_confirms_an_injected_fault(lab_env: Lab) -> None:
    runbook = Runbook.read(lab_env.settings, "HighErrorRate")
    chaos = lab_env.chaos
    # an earlier test's HighErrorRate may still be pending: start from a quiet alert
    lab_env.prom.wait_for_alert("HighErrorRate", "inactive", timeout=60, progress=False)
    chaos.set_error_rate(ratio=0.5)
    chaos.enable()
    try:
        with load.background(lab_env.endpoints.backends, rate=30, duration=30, progress=False):
            lab_env.prom.wait_for_alert("HighErrorRate", "pending", timeout=30, progress=False)
            confirm = runbook.run(lab_env.prom, "How to confirm")
    finally:
        chaos.reset()
    assert len(confirm) == len(runbook.queries("How to confirm")) == 5
    assert max(confirm["values"].iloc[0].values()) > 0.05
    assert set(confirm["values"].iloc[3].values()) == {0.5}  # chaos_enabled * chaos_error_ratio
