"""lab.outage's reading of a database outage: which request belongs to which breaker phase,
from synthetic but realistic timelines (the real experiment runs in notebook 04, headless)."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.outage import Outage

A, B = "http://127.0.0.1:1", "http://127.0.0.1:2"
EVENTS = {"going": 2.0, "down": 2.4, "back": 9.0, "closed": 10.0}


def outage() -> Outage:
    """Two replicas; A's breaker opens at 4.0, B's at 4.5; both close by 10.0."""
    requests = pd.DataFrame(
        [
            (1.0, 0.01, 200, A),
            (2.2, 0.01, 200, B),  # going away: answered before the database was gone
            (2.5, 2.0, 503, A),  # timing out: A still closed
            (4.2, 2.0, 503, B),  # timing out: B opens only at 4.5
            (4.2, 0.005, 503, A),  # open: fast
            (6.1, 2.0, 503, A),  # open, slow: the half-open probe
            (9.5, 0.004, 503, B),  # recovering: back, not yet closed
            (10.5, 0.01, 200, A),  # after
        ],
        columns=["t", "latency_s", "status", "replica"],
    )
    breaker = pd.DataFrame(
        [(1.0, A, 0), (1.0, B, 0), (4.0, A, 1), (4.5, B, 1), (9.8, A, 0), (9.9, B, 0)],
        columns=["t", "replica", "open"],
    )
    return Outage(requests, breaker, dict(EVENTS))


def test_each_request_is_named_after_its_own_replicas_breaker() -> None:
    phases = outage().phases()["phase"].tolist()
    assert phases == [
        "before",
        "going away",
        "timing out",
        "timing out",
        "open",
        "open",
        "recovering",
        "after",
    ]


def test_a_breaker_open_before_the_outage_does_not_count() -> None:
    run = outage()
    run.breaker.loc[len(run.breaker)] = (0.5, A, 1)  # an earlier, unrelated opening
    assert run.opened_at() == {A: 4.0, B: 4.5}


def test_summary_counts_and_times_each_phase_in_order() -> None:
    table = outage().summary()
    assert table.index.tolist() == [
        "before",
        "going away",
        "timing out",
        "open",
        "recovering",
        "after",
    ]
    assert table.loc["timing out", "unavailable"] == 2
    assert table.loc["timing out", "median_ms"] == 2000
    assert table.loc["open", "requests"] == 2
    assert table.loc["before", "ok"] == 1


def test_a_replica_whose_breaker_never_opened_stays_timing_out_until_the_end() -> None:
    run = outage()
    run.breaker = run.breaker[run.breaker["replica"] == A]
    phases = run.phases().set_index("t")["phase"]
    assert phases[4.2].tolist() == ["timing out", "open"]  # B never opened: still timing out
    with pytest.raises(KeyError):
        Outage(run.requests, run.breaker, {"going": 1.0, "down": 1.0}).phases()


def test_a_request_sent_before_but_caught_by_the_outage_is_not_counted_before() -> None:
    """The bench's full run failed 04's check once: a request sent 20 ms before PostgreSQL froze
    waited out the 2 s database timeout, and counted as a 503 "before" the outage."""
    run = outage()
    run.requests.loc[len(run.requests)] = (1.98, 2.02, 503, B)  # in flight when it began
    phases = run.phases().set_index("t")["phase"]
    assert phases[1.0] == "before"
    assert phases[1.98] == "going away"
    assert run.summary().loc["before", "unavailable"] == 0
