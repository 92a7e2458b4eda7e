"""Load plan bounds, round-robin, the summary arithmetic, failures recorded as errors, and
the fail-fast stop when the lab is gone (real sockets: a closed port and a live server)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pandas as pd
import pytest
from local_http import serving

from lab import load
from lab.errors import LabNotRunningError
from lab.net import free_port


def test_plan_is_bounded_by_the_smaller_of_count_and_duration() -> None:
    assert load.LoadPlan.build("http://a", rate=10, duration=3).requests == 30
    assert load.LoadPlan.build("http://a", rate=10, duration=3, requests=7).requests == 7
    assert load.LoadPlan.build("http://a", rate=10, requests=7).requests == 7
    with pytest.raises(ValueError, match="bound the load"):
        load.LoadPlan.build("http://a", rate=10)
    with pytest.raises(ValueError, match="rate must be positive"):
        load.LoadPlan.build("http://a", rate=0, duration=1)
    with pytest.raises(ValueError, match="at least one"):
        load.LoadPlan.build([], rate=1, duration=1)


def test_closed_loop_plan_needs_a_concurrency_and_a_count() -> None:
    plan = load.LoadPlan.build("http://a", requests=7, concurrency=3)
    assert (plan.rate, plan.requests, plan.concurrency) == (None, 7, 3)
    assert plan.scheduled().shape == (7,)  # due when sent: filled in as they go
    with pytest.raises(ValueError, match="one of them"):
        load.LoadPlan.build("http://a", rate=10, requests=7, concurrency=3)
    with pytest.raises(ValueError, match="one of them"):
        load.LoadPlan.build("http://a", requests=7)
    with pytest.raises(ValueError, match="a number of requests"):
        load.LoadPlan.build("http://a", duration=3, concurrency=3)
    with pytest.raises(ValueError, match="concurrency >= 1"):
        load.LoadPlan.build("http://a", requests=7, concurrency=0)


def test_closed_loop_summary_has_no_target_rate() -> None:
    df = pd.DataFrame(
        {
            "scheduled_s": [0.0, 0.0, 0.1],
            "sent_s": [0.0, 0.0, 0.1],
            "latency_s": [0.1, 0.2, 0.1],
            "status": pd.array([200, 200, 500], dtype="Int64"),
            "error": [None, None, None],
        }
    )
    summary = load.summarize(df, target_rate=None)
    assert math.isnan(summary["target_rate"])
    assert summary["achieved_rate"] == pytest.approx(3 / 0.2)  # 3 sent, the last done at 0.2 s
    assert summary["error_ratio"] == pytest.approx(1 / 3)


def test_requests_go_round_robin_and_are_scheduled_at_i_over_rate() -> None:
    plan = load.LoadPlan.build(["http://a/", "http://b"], rate=4, requests=5, path="/api/work")
    assert [plan.url(i) for i in range(3)] == [
        "http://a/api/work",
        "http://b/api/work",
        "http://a/api/work",
    ]
    assert plan.scheduled().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_summary_arithmetic() -> None:
    df = pd.DataFrame(
        {
            "scheduled_s": [0.0, 0.5, 1.0, 1.5],
            "sent_s": [0.0, 0.5, 1.0, math.nan],
            "latency_s": [0.1, 0.2, 0.3, math.nan],
            "status": pd.array([200, 500, 200, None], dtype="Int64"),
            "error": [None, None, None, load.NOT_SENT],
        }
    )
    summary = load.summarize(df, target_rate=2.0)
    assert summary["requests"] == 4
    assert summary["achieved_rate"] == pytest.approx(3 / 1.5)  # 3 sent over 3 half-second slots
    assert summary["throughput"] == pytest.approx(3 / 1.3)  # last answer at 1.0 + 0.3 s
    assert summary["error_ratio"] == 0.5  # one 5xx, one not sent
    assert summary["p50"] == pytest.approx(0.2)
    assert summary["send_lag_p99"] == 0.0


@pytest.fixture
def answering_url() -> Iterator[str]:
    """A real HTTP server on a free loopback port that answers 200 to every GET."""

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    with serving(Ok) as url:
        yield url


def test_load_against_a_lab_that_is_gone_stops_at_once_and_says_so() -> None:
    closed = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with pytest.raises(LabNotRunningError) as caught:
        load.run(closed, rate=20, duration=60, progress=False)  # 1200 requests planned
    message = str(caught.value)
    assert "lab is not running" in message
    assert "`lab.connect()`" in message
    assert all(url in message for url in closed)
    sent = int(re.search(r"stopped after (\d+) of 1200", message).group(1))  # type: ignore[union-attr]
    assert 2 <= sent < 100  # stopped after the first refusals, not after the planned minute


def test_a_refused_replica_next_to_a_live_one_is_recorded_as_errors(answering_url: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = load.run([answering_url, closed], rate=50, requests=10, progress=False)
    assert len(result.df) == 10
    by_url = result.df.groupby(result.df["url"].str.startswith(closed))
    refused, answered = by_url.get_group(True), by_url.get_group(False)
    assert refused["status"].isna().all()
    assert refused["error"].str.contains("Cannot connect").all()
    assert (answered["status"] == 200).all()
    assert result.summary()["error_ratio"] == 0.5
