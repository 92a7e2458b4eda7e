"""Every plot renders with a title, labelled axes and the series the learner should see."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from matplotlib.figure import Figure

from lab import plots
from lab.load import LoadPlan, LoadResult

T0 = pd.Timestamp("2026-11-26T06:00:00Z")


def series(values: list[float], **labels: str) -> pd.DataFrame:
    stamps = [T0 + pd.Timedelta(seconds=5 * i) for i in range(len(values))]
    return pd.DataFrame({"timestamp": stamps, **labels, "value": values})


class CannedProm:
    """Answers range queries with fixed frames and records what was asked (no Prometheus)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, timedelta, str]] = []

    def query_range(self, q: str, start: timedelta, step: str) -> pd.DataFrame:
        self.asked.append((q, start, step))
        if "by (route)" in q:
            return pd.concat(
                [series([10, 12, 11], route="/api/items"), series([1, 2, 1], route="/api/work")]
            )
        if "by (instance)" in q:
            return series([0, 3, 1], instance="127.0.0.1:1")
        return series([0.01, 0.2, 0.3])


def rendered(fig: Figure) -> Figure:
    """Draw the figure to PNG bytes (catches errors that only show when drawing)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    return fig


def legend(ax: object) -> list[str]:
    return ax.get_legend_handles_labels()[1]  # type: ignore[attr-defined, no-any-return]


def test_golden_signals_asks_the_four_signals_and_labels_every_panel() -> None:
    prom = CannedProm()
    fig = rendered(plots.golden_signals(prom, window=timedelta(minutes=5)))
    assert len(prom.asked) == 6
    assert {step for _, _, step in prom.asked} == {"1s"}
    assert all('job="ironclad-backend"' in q for q, _, _ in prom.asked)
    traffic, errors, latency, saturation = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["Traffic", "Errors", "Latency", "Saturation"]
    assert legend(traffic) == ["/api/items", "/api/work"]
    assert errors.get_lines()[0].get_ydata().tolist() == pytest.approx([1, 20, 30])  # percent
    assert legend(latency) == ["p50", "p95", "p99", "SLO p95 < 500 ms"]
    assert legend(saturation) == ["127.0.0.1:1"]
    assert all(ax.get_ylabel() and ax.get_xlabel() for ax in fig.axes)
    assert fig.get_suptitle() == "Golden signals — ironclad-backend, last 5 min"


def test_empty_data_says_so_instead_of_an_empty_axis() -> None:
    class NoData:
        def query_range(self, q: str, start: timedelta, step: str) -> pd.DataFrame:
            return pd.DataFrame(columns=["timestamp", "value"])

    fig = rendered(plots.golden_signals(NoData()))
    assert all("no data yet" in [t.get_text() for t in ax.texts] for ax in fig.axes[:2])


def test_rollout_timeline_steps_each_count() -> None:
    df = pd.DataFrame(
        {
            "t": [0, 1, 2, 3],
            "desired": [3] * 4,
            "replicas": [3, 4, 4, 3],
            "updated": [0, 1, 2, 3],
            "ready": [3, 3, 2, 3],
            "available": [3, 3, 3, 3],
        }
    )
    fig = rendered(plots.rollout_timeline(df))
    [ax] = fig.axes
    assert legend(ax) == ["desired", "updated", "ready", "available"]
    assert ax.get_xlabel() == "seconds since the rollout started"
    assert ax.get_ylabel() == "pods"


@pytest.mark.usefixtures("spanish")
def test_a_plot_speaks_the_learners_language() -> None:
    """lab's own labels from lab.po, and a title a notebook hands in (04's, f-strings alike:
    05's) from that notebook's catalog; the numbers and column data stay as they are."""
    df = pd.DataFrame({"t": [0, 1], "desired": [3, 3], "updated": [0, 3], "ready": [3, 3]})
    title = "Rolling restart of backend (maxUnavailable 1, maxSurge 1)"
    fig = rendered(plots.rollout_timeline(df, title=title))
    [ax] = fig.axes
    assert fig.get_suptitle() == "Reinicio progresivo de backend (maxUnavailable 1, maxSurge 1)"
    assert legend(ax) == ["deseadas", "actualizadas", "listas"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("segundos desde que empezó el rollout", "pods")
    assert rendered(plots.rollout_timeline(df)).get_suptitle() == "Actualización progresiva"
    decisions = pd.DataFrame({"current": [3, 3], "utilization": [0, 140], "desired": [3, 6]})
    target = 70
    fig = rendered(
        plots.hpa_decisions(
            decisions,
            target=target,
            low=3,
            high=10,
            title=f"backend-hpa: desired replicas (target {target} % of the CPU request)",
        )
    )
    assert fig.get_suptitle() == (
        "backend-hpa: réplicas deseadas (objetivo: 70 % de la request de CPU)"
    )
    [ax] = fig.axes
    assert legend(ax)[0] == "desde 3 réplicas"
    assert ax.get_ylabel() == "réplicas deseadas"


def test_replicas_vs_load_uses_two_axes_and_one_legend() -> None:
    df = pd.DataFrame(
        {"t": [0, 30, 60], "replicas": [3, 3, 5], "desired": [3, 5, 5], "rps": [10.0, 200.0, 210.0]}
    )
    fig = rendered(plots.replicas_vs_load(df))
    left, right = fig.axes
    assert (left.get_ylabel(), right.get_ylabel()) == ("replicas", "requests / s")
    assert [t.get_text() for t in left.get_legend().get_texts()] == [
        "replicas",
        "desired (HPA)",
        "requests / s",
    ]


def test_alert_timeline_draws_pending_then_firing_per_alert() -> None:
    rows = [
        ("HighErrorRate", "pending", 0),
        ("HighErrorRate", "pending", 1),
        ("HighErrorRate", "firing", 2),
        ("HighErrorRate", "firing", 3),
        ("HighLatency", "pending", 2),
    ]
    df = pd.DataFrame(
        {
            "timestamp": [T0 + pd.Timedelta(seconds=s) for *_, s in rows],
            "alertname": [r[0] for r in rows],
            "alertstate": [r[1] for r in rows],
            "value": 1.0,
        }
    )
    fig = rendered(plots.alert_timeline(df))
    [ax] = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["HighErrorRate", "HighLatency"]
    assert legend(ax) == ["pending", "firing"]
    bars = ax.collections
    assert [len(b.get_paths()) for b in bars] == [2, 2, 1, 0]  # pending/firing per alert


def test_alert_timeline_without_alerts_says_none_fired() -> None:
    fig = rendered(plots.alert_timeline(pd.DataFrame(columns=["timestamp", "value"])))
    assert "no alert was pending or firing" in [t.get_text() for t in fig.axes[0].texts]


def test_budget_remaining_gives_each_slo_its_own_panel() -> None:
    """Two SLOs at the same value are never drawn one under the other (issue 22)."""
    df = pd.concat(
        [series([100, 100, 33], slo="availability"), series([100, 100, 100], slo="latency")]
    )
    fig = rendered(plots.budget_remaining(df, events={"2 failures": T0}))
    assert [ax.get_title() for ax in fig.axes] == ["availability", "latency"]
    for ax in fig.axes:
        assert legend(ax) == [
            "budget remaining",
            "warning: below 50 %",
            "critical: below 10 %",
            "2 failures",
        ]
        assert ax.get_ylabel() == "% of the error budget left"
    assert [t.get_text() for t in fig.axes[0].texts] == ["33.0 %"]


def test_latency_histogram_marks_percentiles_and_the_slo() -> None:
    plan = LoadPlan.build("http://a", rate=10, requests=100)
    latencies = np.linspace(0.01, 0.1, 100)
    df = pd.DataFrame(
        {
            "scheduled_s": plan.scheduled(),
            "sent_s": plan.scheduled(),
            "latency_s": latencies,
            "status": pd.array([200] * 100, dtype="Int64"),
            "error": None,
        }
    )
    fig = rendered(plots.latency_histogram(LoadResult(plan, df)))
    [ax] = fig.axes
    labels = legend(ax)
    assert labels[0] == "p50 = 55.0 ms"
    assert labels[-1] == "SLO threshold 500 ms"
    assert ax.get_title() == "100 requests at 10/s, 0.0% errors"


def test_returned_figures_display_as_png_under_ipython() -> None:
    shell = InteractiveShell.instance()
    try:
        fig = plots.rollout_timeline(pd.DataFrame({"t": [0, 1], "ready": [1, 2]}))
        formatted, _ = shell.display_formatter.format(fig)
        assert formatted["image/png"]
    finally:
        InteractiveShell.clear_instance()


def test_writes_across_restart_shows_failures_committed_rows_and_events() -> None:
    df = pd.DataFrame(
        {
            "t": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5],
            "ok": [True, True, False, False, True, True],
            "latency_ms": [2.0, 3.0, 0.5, 0.4, 40.0, 2.0],
        }
    )
    fig = rendered(plots.writes_across_restart(df, events={"crash": 0.8, "restart": 1.8}))
    latency, committed = fig.axes
    assert legend(latency) == ["write committed", "write failed (2)", "crash", "restart"]
    assert committed.get_ylabel() == "rows committed"
    [rows] = committed.get_lines()[:1]
    assert list(rows.get_ydata()) == [1, 2, 2, 2, 3, 4]


def test_restart_under_load_counts_failures_and_shades_each_restart() -> None:
    df = pd.DataFrame(
        {
            "scheduled_s": [0.1, 0.5, 1.2, 1.7, 2.4],
            "status": pd.array([200, 200, None, 503, 200], dtype="Int64"),
            "error": [None, None, "connection refused", None, None],
        }
    )
    restarts = pd.DataFrame({"replica": ["r0"], "stopped_s": [1.0], "ready_s": [2.0]})
    fig = rendered(plots.restart_under_load(df, restarts))
    [ax] = fig.axes
    assert legend(ax) == ["answered", "failed", "r0 not ready"]
    [outside] = fig.legends  # below the axes, not over the data (issue 22)
    assert [t.get_text() for t in outside.get_texts()] == ["answered", "failed", "r0 not ready"]
    assert ax.get_legend() is None
    assert ax.get_title() == "2 of 5 requests failed"
    failed = next(line for line in ax.get_lines() if line.get_label() == "failed")
    assert list(failed.get_ydata()) == [0, 2, 0]


def test_hpa_decisions_draws_one_curve_per_start_and_the_bounds() -> None:
    df = pd.DataFrame(
        {"current": [3, 3, 6, 6], "utilization": [0, 140, 0, 140], "desired": [3, 6, 3, 10]}
    )
    fig = rendered(plots.hpa_decisions(df, target=70, low=3, high=10))
    [ax] = fig.axes
    assert legend(ax) == [
        "from 3 replicas",
        "from 6 replicas",
        "tolerance ±10%: no change",
        "target 70 %",
    ]
    assert [t.get_text() for t in ax.texts] == ["minReplicas 3", "maxReplicas 10"]


def test_path_matrix_colours_verdicts_and_marks_the_unintended() -> None:
    verdicts = pd.DataFrame(
        {
            "source": ["backend", "backend", "other"],
            "target": ["postgres", "internet", "backend"],
            "port": [5432, 443, 3000],
            "protocol": ["TCP", "TCP", "TCP"],
            "allowed": [True, True, True],
            "expected": [True, False, None],
        }
    )
    fig = rendered(plots.path_matrix(verdicts))
    [ax] = fig.axes
    assert sorted(t.get_text() for t in ax.texts) == ["allowed", "allowed", "allowed !"]
    assert ax.get_title() == "3 paths, 1 differ from the intended verdict (marked !)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["backend", "other"]


def test_hpa_decisions_marks_measured_points_with_their_labels() -> None:
    df = pd.DataFrame({"current": [3, 3], "utilization": [0, 300], "desired": [3, 10]})
    measured = pd.DataFrame(
        {"utilization": [35.0, 160.0], "desired": [3, 7], "label": ["2/s", "10/s"]}
    )
    fig = rendered(plots.hpa_decisions(df, target=70, low=3, high=10, measured=measured))
    [ax] = fig.axes
    assert legend(ax)[-1] == "measured"
    assert [t.get_text() for t in ax.texts][-2:] == ["2/s", "10/s"]


def test_budget_remaining_shows_every_value_it_is_given() -> None:
    """No clipping: the drop a lesson checks is on the axis, however deep it goes."""
    fig = rendered(plots.budget_remaining(series([100, 60, -7000], slo="availability")))
    [ax] = fig.axes
    low, high = ax.get_ylim()
    assert low <= -7000
    assert high == 105
    [line] = [line for line in ax.get_lines() if line.get_label() == "budget remaining"]
    assert list(line.get_ydata()) == [100, 60, -7000]
    calm = rendered(plots.budget_remaining(series([100, 95])))
    assert calm.axes[0].get_ylim()[0] == -5
