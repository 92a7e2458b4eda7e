"""Lesson 07 against a REAL local lab: the chaos-parameters exercise runs its experiment on the
replicas and reads the alert states from Prometheus (lab-scale rules); and the HighErrorRate
runbook's own queries confirm an injected fault."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

from lab import load, slo
from lab.contract import JOB
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


# notebook 07's budget cell sends its spend this way: load.run's closed loop, 3 connections, a
# new connection per request (none left idle for the backend to close under it), 60 s to answer
# (a request still unanswered after that is a finding, not load)
SPEND: dict[str, Any] = {
    "concurrency": 3,
    "fresh_connections": True,
    "timeout": 60,
    "progress": False,
}


def test_the_budget_on_a_window_the_lesson_controls_matches_the_math(lab_env: Lab) -> None:
    """Notebook 07's budget measurement: 1500 good requests and 1 failure since a chosen moment
    leave a third of the availability budget (the recorded 12 h budget cannot show that).

    Sent as the notebook sends them, in a closed loop with every outcome counted (`SPEND`), so
    however loaded the machine, the backend's counters hold exactly the requests sent:
    Prometheus's budget (`budget_since_expr`) must equal `lab.slo`'s math on the client's own
    count, to the hundredth of a point. (Open-loop at a fixed rate, under heavy CPU load
    requests timed out or were never sent, and the two counts drifted.)"""
    # A quiet moment, as in the notebook (cells apart from the incident's traffic): every
    # replica scraped after the earlier tests' last request, so none of those counts here.
    quiet, scraped = time.time(), f'timestamp(up{{job="{JOB}"}})'
    lab_env.prom.wait_until(
        f"min({scraped})", lambda f: f["value"].iloc[0] > quiet, timeout=30, progress=False
    )
    since = lab_env.prom.value(f"max({scraped})")
    assert since is not None
    good = load.run(lab_env.endpoints.backends, requests=1500, **SPEND).df
    lab_env.chaos.set_error_rate(ratio=1.0)
    lab_env.chaos.enable()
    try:
        bad = load.run(lab_env.endpoints.backends, requests=1, **SPEND).df
    finally:
        lab_env.chaos.reset()
    sent = pd.concat([good, bad], ignore_index=True)
    assert len(sent) == 1501
    assert sent["error"].isna().all(), sent["error"].dropna().unique()[:3]  # every one answered
    assert (good["status"] == 200).all()
    assert (bad["status"] >= 500).all()
    failed = int((sent["status"] >= 500).sum())
    counted = slo.counted_since("http_requests_total", since)
    lab_env.prom.wait_until(
        counted, lambda f: not f.empty and f["value"].iloc[0] >= len(sent), timeout=30,
        progress=False,
    )  # fmt: skip
    assert lab_env.prom.value(counted) == len(sent)  # the backend counted exactly these
    measured = lab_env.prom.value(slo.AVAILABILITY.budget_since_expr(since))
    predicted = slo.budget_remaining_percentage(failed / len(sent), slo.AVAILABILITY.objective)
    assert measured == pytest.approx(predicted, abs=0.01)
    assert predicted == pytest.approx(100 * (1 - (1 / 1501) / 0.001))  # a third of the budget
    # latency: the backend times less than the client saw (no network, no client), so its
    # budget is at least what the client's slow requests would leave
    slow = int((sent["latency_s"] > slo.LATENCY_THRESHOLD_S).sum())
    floor = slo.budget_remaining_percentage(slow / len(sent), slo.LATENCY.objective)
    assert floor - 0.01 <= lab_env.prom.value(slo.LATENCY.budget_since_expr(since)) <= 100
