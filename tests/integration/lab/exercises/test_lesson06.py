"""Lesson 06 against a REAL local Prometheus and backend replicas: the p95-per-route exercise
(accepts the solution, rejects plausible wrong queries), the dashboard drawn from live data and
one request found in the replicas' JSON logs by its id."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests

from lab import dashboard, load
from lab.backend_logs import request_logs
from lab.contract import SLI_SELECTOR
from lab.errors import ExerciseFailedError
from lab.exercises import solution_path, verify
from lab.session import Lab
from lab.waits import poll

# lessons 06 and 07 share one lab (`lab_env`, conftest.py): one xdist worker runs them both
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lab_env")]

BUCKETS = f"rate(http_request_duration_seconds_bucket{{{SLI_SELECTOR}}}[1m])"


def solution_answer(env: Lab) -> str:
    """The `answer` the committed solution cell computes."""
    source = solution_path("06-p95-per-route", env.settings.repo_root).read_text()
    scope: dict[str, object] = {"SLI_SELECTOR": SLI_SELECTOR}
    exec(source.split("lab.verify(")[0], scope)  # the cell up to its verify line
    return str(scope["answer"])


def test_the_solution_passes(lab_env: Lab) -> None:
    result = verify("06-p95-per-route", solution_answer(lab_env), env=lab_env)
    assert result.status == "passed"
    assert "/api/items" in result.seen


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(f"histogram_quantile(0.5, sum by (route, le) ({BUCKETS}))", id="p50"),
        pytest.param(f"histogram_quantile(0.95, sum by (le) ({BUCKETS}))", id="no-route"),
        pytest.param(f"histogram_quantile(0.95, sum by (route) ({BUCKETS}))", id="no-le"),
        pytest.param(
            "histogram_quantile(0.95, sum by (route, le) "
            "(rate(http_request_duration_seconds_bucket[1m])))",
            id="all-routes-and-jobs",
        ),
        pytest.param(
            "sum by (route) (rate(http_request_duration_seconds_sum[1m])) / sum by (route) "
            "(rate(http_request_duration_seconds_count[1m]))",
            id="the-mean",
        ),
        pytest.param("p95 latency per route", id="not-promql"),
        pytest.param("http_request_duration_seconds_bucket", id="no-window"),
    ],
)
def test_plausible_wrong_queries_fail(lab_env: Lab, wrong: str) -> None:
    with pytest.raises(ExerciseFailedError) as failed:
        verify("06-p95-per-route", wrong, env=lab_env)
    assert failed.value.hint


def test_text_that_is_not_promql_is_told_so(lab_env: Lab) -> None:
    with pytest.raises(ExerciseFailedError) as failed:
        verify("06-p95-per-route", "p95 latency per route", env=lab_env)
    assert "is not PromQL" in failed.value.seen
    assert "range windows" not in failed.value.seen


def test_an_untouched_cell_is_not_attempted(lab_env: Lab) -> None:
    assert verify("06-p95-per-route", ..., env=lab_env).status == "not attempted"


def test_every_dashboard_panel_reads_the_live_prometheus(lab_env: Lab) -> None:
    # traffic of its own: the session's first requests may have left the panels' 1 m window
    load.run(lab_env.endpoints.backends, rate=30, duration=3, progress=False)
    board = dashboard.Dashboard.read(lab_env.settings)
    results = dashboard.fetch(lab_env.prom, board, window=timedelta(minutes=1))
    table = dashboard.summary(results)
    assert (table["problem"] == "").all(), table[table["problem"] != ""]
    empty = set(table.loc[table["series"] == 0, "panel"])
    assert empty <= {"Alerts"}, f"panels without data on a healthy lab: {empty}"
    last = table.set_index(["panel", "ref"])["last"]
    assert last[("Errors: share of /api requests answering 5xx", "A")] == 0
    assert last[("Replicas up", "A")] == 3
    fig = dashboard.draw(board, results, window=timedelta(minutes=1))
    assert len(fig.axes) == len(board.panels)


def test_one_request_is_found_in_the_replicas_json_logs(lab_env: Lab) -> None:
    request_id = f"test-{uuid.uuid4().hex[:8]}"
    answer = requests.get(
        f"{lab_env.endpoints.backend}/api/items",
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert answer.headers["X-Request-ID"] == request_id
    records = poll(
        lambda: request_logs(lab_env, request_id).to_dict("records"),
        what="the request's log line",
        timeout=10,
        progress=False,
    )
    assert {r["replica"] for r in records} == {lab_env.endpoints.backend}
    access = [r for r in records if r.get("status") == answer.status_code]
    assert access
    assert access[0]["route"] == "/api/items"
    assert request_logs(lab_env, "no-such-request").empty
