"""Lesson 07 against a REAL local lab: the chaos-parameters exercise runs its experiment on the
replicas and reads the alert states from Prometheus (lab-scale rules); and the HighErrorRate
runbook's own queries confirm an injected fault."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest
import requests

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


def closed_loop(urls: Sequence[str], count: int, workers: int = 3) -> pd.DataFrame:
    """GET /api/items `count` times, round-robin over `urls`, from `workers` threads that each
    send their next request only once the last one was answered (closed loop: however slow the
    machine, nothing piles up, nothing is dropped for lateness); one row per request: `status`
    (None when it got no answer), `latency_s`, `error`. Each request opens its own connection
    (`Connection: close`): no idle keep-alive connection for the backend to close under it.
    The timeout is generous: a request still unanswered after it is a finding, not load."""

    def one(i: int) -> dict[str, Any]:
        started = time.monotonic()
        try:
            answer = requests.get(
                f"{urls[i % len(urls)]}/api/items",
                headers={"Connection": "close"},
                timeout=ANSWER_TIMEOUT_S,
            )
        except requests.RequestException as exc:
            return {"status": None, "latency_s": None, "error": repr(exc)}
        return {
            "status": answer.status_code,
            "latency_s": time.monotonic() - started,
            "error": None,
        }

    with ThreadPoolExecutor(workers) as pool:
        return pd.DataFrame(list(pool.map(one, range(count))))


ANSWER_TIMEOUT_S = 60


def test_the_budget_on_a_window_the_lesson_controls_matches_the_math(lab_env: Lab) -> None:
    """Notebook 07's budget measurement: 1500 good requests and 1 failure since a chosen moment
    leave a third of the availability budget (the recorded 12 h budget cannot show that).

    Sent in a closed loop with every outcome counted (`closed_loop`), so however loaded the
    machine, the backend's counters hold exactly the requests sent: Prometheus's budget
    (`budget_since_expr`) must equal `lab.slo`'s math on the client's own count, to the
    hundredth of a point. (Notebook 07 sends them open-loop at a fixed rate, as users do; under
    heavy CPU load requests then time out or are never sent, and the two counts drift.)"""
    # A quiet moment, as in the notebook (cells apart from the incident's traffic): every
    # replica scraped after the earlier tests' last request, so none of those counts here.
    quiet, scraped = time.time(), f'timestamp(up{{job="{JOB}"}})'
    lab_env.prom.wait_until(
        f"min({scraped})", lambda f: f["value"].iloc[0] > quiet, timeout=30, progress=False
    )
    since = lab_env.prom.value(f"max({scraped})")
    assert since is not None
    good = closed_loop(lab_env.endpoints.backends, 1500)
    lab_env.chaos.set_error_rate(ratio=1.0)
    lab_env.chaos.enable()
    try:
        bad = closed_loop(lab_env.endpoints.backends, 1)
    finally:
        lab_env.chaos.reset()
    sent = pd.concat([good, bad], ignore_index=True)
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
