"""lab.dashboard against a FAKE Prometheus that answers range queries with canned frames (no
Prometheus runs here; tests/integration/lab/test_dashboard_local.py runs the same against the
real local one). The dashboard is the committed, provisioned JSON."""

from __future__ import annotations

import io
from datetime import timedelta

import pandas as pd
import pytest
from matplotlib.figure import Figure

from lab import dashboard
from lab.errors import PrometheusError
from lab.settings import get_settings

T0 = pd.Timestamp("2026-11-30T17:00:00Z")
BOARD = dashboard.Dashboard.read(get_settings())


def frame(values: list[float], **labels: str) -> pd.DataFrame:
    stamps = [T0 + pd.Timedelta(seconds=i) for i in range(len(values))]
    return pd.DataFrame({"timestamp": stamps, **labels, "value": values})


class FakeProm:
    """Canned frames by query shape; records every query; refuses one if told to."""

    def __init__(self, refuse: str = "") -> None:
        self.asked: list[tuple[str, timedelta, str]] = []
        self.refuse = refuse

    def query_range(self, q: str, *, start: timedelta, step: str) -> pd.DataFrame:
        self.asked.append((q, start, step))
        if self.refuse and self.refuse in q:
            raise PrometheusError("Prometheus refused it: parse error", "Fix the PromQL.")
        if "by (route)" in q:
            return pd.concat([frame([5, 6], route="/api/items"), frame([1, 1], route="/health")])
        if q.startswith("ALERTS"):
            return frame([1, 1], alertname="HighErrorRate", alertstate="firing")
        if q.startswith("count(up"):
            return frame([3, 2])
        if q == "error_budget_remaining_percentage":
            return pd.concat([frame([80, 40], slo="availability"), frame([99, 99], slo="latency")])
        if "process_cpu_seconds_total" in q:
            return frame([0.4, 0.5], instance="10.0.0.1:3000")
        if "circuit_breaker" in q:
            return frame([])[["timestamp", "value"]]
        return frame([0.0, 0.1])


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def test_variables_are_grafanas_at_both_scales() -> None:
    assert dashboard.GRAFANA_VARIABLES == {
        "$__rate_interval": "1m",
        "$__interval": "15s",
        "$__range": "1h",
    }
    assert dashboard.LAB_VARIABLES == {
        "$__rate_interval": "4s",
        "$__interval": "1s",
        "$__range": "1m",
    }
    assert (
        dashboard.substitute(
            "rate(x[$__rate_interval]) $__interval", {"$__interval": "1s", "$__rate_interval": "4s"}
        )
        == "rate(x[4s]) 1s"
    )


def test_panels_keep_the_json_layout_units_and_thresholds() -> None:
    by_title = {p.title: p for p in BOARD.panels}
    replicas = by_title["Replicas up"]
    assert (replicas.x, replicas.y, replicas.w, replicas.h) == (0, 33, 6, 6)
    assert replicas.thresholds == ((None, "red"), (3, "green"))
    assert replicas.colour(2) == "red"
    assert replicas.colour(3) == "green"
    assert by_title["Errors: share of /api requests answering 5xx"].unit == "percentunit"
    assert BOARD.rows == 39


def test_fetch_runs_every_panel_query_with_the_variables_filled_in() -> None:
    prom = FakeProm()
    results = dashboard.fetch(prom, BOARD, window=timedelta(minutes=2))
    expected = sum(len(p.queries) for p in BOARD.panels)
    assert len(prom.asked) == len(results) == expected
    assert all("$__" not in q for q, _, _ in prom.asked)
    assert any("[4s]" in q for q, _, _ in prom.asked)
    assert {(start, step) for _, start, step in prom.asked} == {(timedelta(minutes=2), "1s")}
    table = dashboard.summary(results).set_index(["panel", "ref"])
    assert table.loc[("Traffic: requests per second by route", "A"), "series"] == 2
    assert table.loc[("Replicas up", "A"), "last"] == 2
    assert table.loc[("Circuit breaker open", "A"), "series"] == 0


def test_a_refused_query_is_reported_not_raised() -> None:
    results = dashboard.fetch(FakeProm(refuse="circuit_breaker"), BOARD)
    table = dashboard.summary(results)
    refused = table[table["problem"] != ""]
    assert refused["panel"].tolist() == ["Circuit breaker open"]
    assert "parse error" in refused["problem"].iloc[0]


def test_render_draws_each_panel_at_its_place_with_its_title() -> None:
    fig = dashboard.render(FakeProm(), BOARD, window=timedelta(minutes=5))
    assert png(fig).startswith(b"\x89PNG")
    assert len(fig.axes) == len(BOARD.panels)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    drawn = [p for p in BOARD.panels if p.kind != "row"]
    assert titles.count("") == len(BOARD.panels) - len(drawn)  # rows are headings, not axes titles
    assert {p.title for p in drawn} <= set(titles)
    traffic = fig.axes[titles.index("Traffic: requests per second by route")]
    assert traffic.get_legend_handles_labels()[1] == ["/api/items", "/health"]
    assert traffic.get_ylabel() == "requests / s"
    errors = fig.axes[titles.index("Errors: share of /api requests answering 5xx")]
    assert errors.get_lines()[0].get_ydata()[-1] == pytest.approx(10.0)  # percentunit -> %
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert "No data" in texts  # the breaker panel's empty frame
    assert "HighErrorRate firing" in texts  # the alert table's legendFormat
    assert {"2", "40 %", "99 %"} <= texts  # stat panels: last values with their unit
    left_edge = {round(ax.get_position().x0, 2) for ax in fig.axes if ax.get_title(loc="left")}
    assert len(left_edge) >= 4  # panels at x = 0, 6, 8, 12, 16, 18 of the grid, not one column


def test_cpu_panel_draws_share_of_the_request_with_the_hpa_target_and_the_request() -> None:
    """Issue 21 item 3: the saturation panel in %: 0.5 (of the request) is drawn as 50 %, the
    HPA's 70 % target and the request (100 %) as threshold lines, one series per replica."""
    fig = dashboard.render(FakeProm(), BOARD, window=timedelta(minutes=5))
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    cpu = fig.axes[titles.index("Saturation: CPU per replica, share of its request")]
    assert cpu.get_ylabel() == "%"
    assert cpu.get_legend_handles_labels()[1] == ["10.0.0.1:3000"]
    series, *thresholds = cpu.get_lines()
    assert series.get_ydata()[-1] == pytest.approx(50.0)
    assert [line.get_ydata()[0] for line in thresholds] == pytest.approx([70.0, 100.0])
