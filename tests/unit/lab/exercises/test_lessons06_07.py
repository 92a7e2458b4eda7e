"""06-p95-per-route and 07-latency-alert: answers of the wrong shape are refused before any
query or experiment runs (no lab needed). Wrong answers of the right shape need the live
Prometheus and backend: tests/integration/lab/exercises/test_lesson0[67].py."""

from __future__ import annotations

import pytest

from .conftest import rejected


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        (0.95, "not a PromQL query"),
        (["histogram_quantile(0.95, ...)"], "not a PromQL query"),
    ],
)
def test_06_refuses_what_is_not_a_query(wrong: object, seen: str) -> None:
    assert seen in rejected("06-p95-per-route", wrong, env=None).seen


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        (600, "answer 600"),  # the latency alone
        ({"latency_ms": 600}, "answer"),  # no error ratio
        ({"latency_ms": "slow", "error_ratio": 0}, "answer"),
        ({"latency_ms": 5000, "error_ratio": 0}, "5000 ms"),  # beyond the verifier's bound
        ({"latency_ms": 600, "error_ratio": 5}, "5 errors"),  # a percentage, not a ratio
    ],
)
def test_07_refuses_answers_of_the_wrong_shape(wrong: object, seen: str) -> None:
    assert seen in rejected("07-latency-alert", wrong, env=None).seen
