"""Load plan bounds, round-robin, the summary arithmetic, and failures recorded as errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lab import load
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


def test_unreachable_server_is_recorded_as_errors_not_dropped() -> None:
    result = load.run(f"http://127.0.0.1:{free_port()}", rate=50, requests=10, progress=False)
    assert len(result.df) == 10
    assert result.df["status"].isna().all()
    assert result.df["error"].str.contains("Cannot connect").all()
    assert result.summary()["error_ratio"] == 1.0
    assert math.isnan(result.summary()["p50"])
