"""Lesson 06 exercise: p95 latency per route, in PromQL, checked against the live Prometheus."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import requests

from lab.contract import SLI_SELECTOR
from lab.errors import PrometheusError
from lab.exercises import Outcome, verifier
from lab.i18n import N_, _
from lab.prom import Prom

RANGE = re.compile(r"\[(\d+[smhd])\]")


def reference_query(window: str) -> str:
    """What the exercise asks for: p95 of /api latency per route, over `window`."""
    return (
        "histogram_quantile(0.95, sum by (route, le) "
        f"(rate(http_request_duration_seconds_bucket{{{SLI_SELECTOR}}}[{window}])))"
    )


def _at(prom: Prom, q: str, when: datetime) -> pd.DataFrame:
    """`q` evaluated at exactly `when` (a one-point range query: both answers share a time)."""
    frame = prom.query_range(q, start=when, end=when, step="1s")
    return frame.drop(columns=["timestamp"], errors="ignore")


def _by_route(frame: pd.DataFrame) -> dict[str, float] | None:
    if "route" not in frame or frame["route"].isna().any() or frame["route"].duplicated().any():
        return None
    return {str(r): float(v) for r, v in zip(frame["route"], frame["value"], strict=True)}


@verifier(
    "06-p95-per-route",
    hint=N_(
        "p95 comes from the histogram's buckets: histogram_quantile(0.95, ...) over the rate "
        "of http_request_duration_seconds_bucket, summed so that the `le` label (the bucket "
        "bound) and the route survive; keep to the /api routes (lab.contract.SLI_SELECTOR)."
    ),
)
def p95_per_route(answer: Any, *, env: Any, **_context: Any) -> Outcome:
    """The learner's query must return, at the same instant, the same series (one per /api
    route) and the same values as the reference computed here."""
    if not isinstance(answer, str):
        return Outcome(
            False, _("a {type}, not a PromQL query (a str)").format(type=type(answer).__name__)
        )
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        frame = _at(env.prom, answer, now)
    except PrometheusError as exc:
        if isinstance(exc.__cause__, requests.RequestException):
            raise  # Prometheus is unreachable: not the learner's doing
        reason = " ".join(str(exc.__cause__ or exc.problem).split())[:160]
        return Outcome(
            False,
            _("{answer!r} is not PromQL: Prometheus refused it ({reason})").format(
                answer=answer, reason=reason
            ),
            _(
                "Write one PromQL expression (a string), the kind you would type into the "
                "Prometheus UI: functions, a metric with {label matchers}, a [range] window."
            ),
        )
    windows = set(RANGE.findall(answer))
    if len(windows) != 1:
        return Outcome(
            False,
            _("{count} different range windows in the query").format(count=len(windows))
            if windows
            else _("a query without a range window: no rate() over the histogram's buckets"),
            _("Use one rate() window, e.g. [1m], for every selector."),
        )
    theirs = _by_route(frame)
    ours = _by_route(_at(env.prom, reference_query(windows.pop()), now))
    if not ours:
        return Outcome(
            False,
            _("no /api traffic in the window yet"),
            _("Send some traffic first (the load cell above), then run this cell."),
        )
    if theirs is None:
        return Outcome(False, _("the result has no (unique) `route` label per series"))
    same = theirs.keys() == ours.keys() and all(
        math.isclose(theirs[r], ours[r], rel_tol=1e-9)
        or (math.isnan(theirs[r]) and math.isnan(ours[r]))
        for r in ours
    )
    seen = {r: round(v * 1000, 1) for r, v in theirs.items()}
    return Outcome(
        same,
        _("p95 ms per route {seen}; expected {expected}").format(
            seen=seen, expected={r: round(v * 1000, 1) for r, v in ours.items()}
        ),
    )
