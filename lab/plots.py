"""Figures for the notebooks: each function returns a matplotlib Figure with titles and units.

Figures are built without pyplot (no global state, nothing shown twice); under IPython the PNG
formatter is registered so that a returned Figure displays inline, headless runs included.

Over 400 lines on purpose: one short function per figure the lessons draw, all sharing one
style (`_figure`, `_decorate`, the state colours); splitting them would scatter that style.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lab.contract import JOB, sli_selector
from lab.i18n import N_, _, ngettext, translate
from lab.slo import BUDGET_THRESHOLDS, LATENCY_THRESHOLD_S

STATE_COLORS = {"pending": "#f0a202", "firing": "#d62828"}
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
# matplotlib.dates carries no type hints: a typed handle on the one call this module makes.
_date2num: Callable[[Any], float] = date2num
COUNT_COLUMNS = (N_("desired"), N_("updated"), N_("ready"), N_("available"))  # legend: _()


class RangeQuerier(Protocol):
    """What golden_signals needs: lab.prom.Prom's range query."""

    def query_range(self, q: str, *, start: timedelta, step: str) -> pd.DataFrame: ...


def golden_signal_queries(job: str = JOB, rate_window: str = "1m") -> dict[str, str]:
    """The PromQL behind golden_signals(): traffic, errors, latency (p50/p95/p99), saturation."""
    sel = sli_selector(job)
    buckets = f"sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[{rate_window}]))"
    return {
        "traffic": f"sum by (route) (rate(http_requests_total{{{sel}}}[{rate_window}]))",
        "errors": f'sum(rate(http_requests_total{{{sel},status=~"5.."}}[{rate_window}])) '
        f"/ sum(rate(http_requests_total{{{sel}}}[{rate_window}]))",
        **{f"p{q}": f"histogram_quantile(0.{q}, {buckets})" for q in (50, 95, 99)},
        "saturation": f'sum by (instance) (http_requests_in_flight{{job="{job}"}})',
    }


def golden_signals(
    prom: RangeQuerier,
    *,
    job: str = JOB,
    window: timedelta = timedelta(minutes=10),
    step: str | None = None,
    rate_window: str = "1m",
) -> Figure:
    """Traffic, errors, latency and saturation of the backend over the last `window`."""
    step = step or f"{max(1, int(window.total_seconds() // 200))}s"
    data = {
        name: prom.query_range(q, start=window, step=step)
        for name, q in golden_signal_queries(job, rate_window).items()
    }
    title = _("Golden signals — {job}, last {span}").format(job=job, span=_span(window))
    fig = _figure(2, 2, title, height=6.5)
    traffic, errors, latency, saturation = fig.axes
    _lines(traffic, data["traffic"], by="route", title=_("Traffic"), ylabel=_("requests / s"))
    errors_pct = data["errors"].assign(value=data["errors"]["value"] * 100)
    _lines(
        errors,
        errors_pct,
        title=_("Errors"),
        ylabel=_("5xx responses (%)"),
        label=_("5xx ratio"),
    )
    for q in ("p50", "p95", "p99"):
        _lines(latency, data[q].assign(value=data[q]["value"] * 1000), label=q)
    latency.axhline(
        LATENCY_THRESHOLD_S * 1000,
        color="grey",
        linestyle="--",
        label=_("SLO p95 < {threshold} ms").format(threshold=f"{LATENCY_THRESHOLD_S * 1000:g}"),
    )
    _decorate(latency, title=_("Latency"), ylabel="ms")
    _lines(
        saturation,
        data["saturation"],
        by="instance",
        title=_("Saturation"),
        ylabel=_("requests in flight"),
    )
    return fig


def rollout_timeline(df: pd.DataFrame, *, title: str = N_("Rolling update")) -> Figure:
    """Replica counts during a rollout: `t` (s) + desired/updated/ready/available columns."""
    fig = _figure(1, 1, title)
    [ax] = fig.axes
    for column in (c for c in COUNT_COLUMNS if c in df):
        ax.step(
            df["t"],
            df[column],
            where="post",
            label=_(column),
            linestyle="--" if column == "desired" else "-",
        )
    _decorate(ax, xlabel=_("seconds since the rollout started"), ylabel=_("pods"), integer=True)
    return fig


def replicas_vs_load(
    df: pd.DataFrame,
    *,
    load: str = "rps",
    load_label: str = N_("requests / s"),
    title: str = N_("Autoscaling: replicas follow the load"),
) -> Figure:
    """Replicas (and `desired` if present) against a load column over `t` (s)."""
    fig = _figure(1, 1, title)
    [ax] = fig.axes
    ax.step(df["t"], df["replicas"], where="post", color="tab:blue", label=_("replicas"))
    if "desired" in df:
        ax.step(
            df["t"],
            df["desired"],
            where="post",
            color="tab:blue",
            linestyle="--",
            label=_("desired (HPA)"),
        )
    _decorate(ax, xlabel=_("seconds"), ylabel=_("replicas"), integer=True)
    right = ax.twinx()
    load_label = translate(load_label)
    right.plot(df["t"], df[load], color="tab:orange", label=load_label)
    right.set_ylabel(load_label)
    right.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(handles + more[0], labels + more[1], loc="upper left")
    return fig


def alert_timeline(df: pd.DataFrame, *, title: str = N_("Alert lifecycle")) -> Figure:
    """When each alert was pending and firing, from `prom.query_range("ALERTS", ...)`."""
    names = sorted(df["alertname"].unique()) if not df.empty else []
    fig = _figure(1, 1, title, height=1.2 + 0.5 * max(len(names), 1))
    [ax] = fig.axes
    if not names:
        ax.text(
            0.5,
            0.5,
            _("no alert was pending or firing"),
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    # matplotlib dates: days since 1970-01-01 (its default epoch)
    days = (pd.to_datetime(df["timestamp"], utc=True) - EPOCH) / pd.Timedelta(days=1)
    width = float(np.median(np.diff(np.unique(days)))) if days.nunique() > 1 else 1 / 86400
    for row, name in enumerate(names):
        for state, color in STATE_COLORS.items():
            stamps = days[(df["alertname"] == name) & (df["alertstate"] == state)]
            ax.broken_barh(
                [(float(t), width) for t in stamps],
                (row - 0.35, 0.7),
                color=color,
                label=state if row == 0 else None,
            )
    ax.xaxis_date()
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(max(len(names), 1) - 0.4, -0.6)  # first alert on top
    _decorate(ax, xlabel=_("time (UTC)"), legend=bool(names))
    return fig


def latency_histogram(result: Any, *, title: str = N_("Latency of the load run")) -> Figure:
    """Distribution of a LoadResult's latencies (from the scheduled time), with percentiles."""
    answered = result.df.loc[result.df["status"].notna(), "latency_s"] * 1000
    fig = _figure(1, 1, title)
    [ax] = fig.axes
    if answered.empty:
        ax.text(
            0.5, 0.5, _("no request was answered"), ha="center", va="center", transform=ax.transAxes
        )
    else:
        low = max(float(answered.min()), 0.01)
        high = max(float(answered.max()), LATENCY_THRESHOLD_S * 1000) * 1.5
        ax.hist(answered, bins=np.geomspace(low, high, 60).tolist(), color="tab:blue", alpha=0.8)
        ax.set_xscale("log")  # latencies are long-tailed: a log axis shows the tail
        for q, style in ((0.5, ":"), (0.95, "--"), (0.99, "-.")):
            value = answered.quantile(q)
            ax.axvline(
                value, color="black", linestyle=style, label=f"p{round(q * 100)} = {value:.1f} ms"
            )
    ax.axvline(
        LATENCY_THRESHOLD_S * 1000,
        color=STATE_COLORS["firing"],
        label=_("SLO threshold {threshold} ms").format(threshold=f"{LATENCY_THRESHOLD_S * 1000:g}"),
    )
    summary = result.summary()
    ax.set_title(
        _("{requests} requests at {rate}/s, {errors} errors").format(
            requests=summary["requests"],
            rate=f"{summary['target_rate']:g}",
            errors=f"{summary['error_ratio']:.1%}",
        ),
        fontsize="small",
    )
    _decorate(
        ax,
        xlabel=_("latency (ms, log scale, from the scheduled send time)"),
        ylabel=_("requests"),
    )
    return fig


def _figure(rows: int, cols: int, title: str, height: float = 3.8) -> Figure:
    fig = blank_figure(title, height=height)
    fig.subplots(rows, cols, squeeze=False)
    return fig


def _lines(
    ax: Axes,
    df: pd.DataFrame,
    *,
    by: str | None = None,
    label: str | None = None,
    title: str | None = None,
    ylabel: str | None = None,
) -> None:
    """One line per value of column `by` (or a single line): `value` against `timestamp`."""
    groups: Sequence[tuple[Any, pd.DataFrame]] = (
        list(df.groupby(by)) if by and by in df and not df.empty else [(label, df)]
    )
    for name, group in groups:
        if not group.empty:
            ax.plot(pd.to_datetime(group["timestamp"]), group["value"], label=name)
    if df.empty:
        ax.text(0.5, 0.5, _("no data yet"), ha="center", va="center", transform=ax.transAxes)
    _decorate(ax, title=title, ylabel=ylabel, xlabel=_("time (UTC)"))


def _decorate(
    ax: Axes,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    integer: bool = False,
    legend: bool = True,
) -> None:
    if title:
        ax.set_title(title)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")


def _span(window: timedelta) -> str:
    minutes = window.total_seconds() / 60
    return f"{minutes:g} min" if minutes >= 1 else f"{window.total_seconds():g} s"


def _enable_inline_png() -> None:
    """Under IPython, make returned Figures display as PNG (what the inline backend does)."""
    try:
        from IPython.core.getipython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"})  # type: ignore[no-untyped-call]


def writes_across_restart(
    df: pd.DataFrame,
    *,
    events: dict[str, float] | None = None,
    title: str = N_("Writes across a database restart"),
) -> Figure:
    """A writer's view of an outage: `t` (s), `ok` (bool), `latency_ms` per write attempt.

    Top: each attempt's latency (failed ones in red); bottom: rows committed so far. `events`
    (name -> t) draws a vertical line each, e.g. when the server crashed and came back.
    """
    fig = _figure(2, 1, title, height=5.5)
    latency, committed = fig.axes
    ok = df["ok"].astype(bool)
    latency.scatter(df.loc[ok, "t"], df.loc[ok, "latency_ms"], s=8, label=_("write committed"))
    latency.scatter(
        df.loc[~ok, "t"],
        df.loc[~ok, "latency_ms"],
        s=14,
        marker="x",
        color=STATE_COLORS["firing"],
        label=_("write failed ({count})").format(count=int((~ok).sum())),
    )
    committed.step(df["t"], ok.cumsum(), where="post", color="tab:blue", label=_("rows committed"))
    for i, (name, t) in enumerate((events or {}).items()):
        latency.axvline(t, color=f"C{2 * i + 2}", linestyle="--", label=translate(name))
        committed.axvline(t, color=f"C{2 * i + 2}", linestyle="--")
    _decorate(latency, title=_("Latency of each write attempt"), ylabel="ms")
    _decorate(committed, xlabel=_("seconds"), ylabel=_("rows committed"), integer=True)
    return fig


def breaker_outage(
    requests: pd.DataFrame,
    breaker: pd.DataFrame,
    events: Mapping[str, float],
    *,
    title: str = N_("A database outage through the circuit breaker"),
) -> Figure:
    """Top: every request's latency (log scale; 503s in red) with the outage shaded; bottom:
    each replica's `circuit_breaker_open` gauge. `requests`: t, latency_s, status;
    `breaker`: t, replica, open; `events`: going, back (and closed) in the same seconds."""
    fig = _figure(2, 1, title, height=6.0)
    latency, state = fig.axes
    ok = requests["status"].fillna(0) == 200
    latency.scatter(
        requests.loc[ok, "t"],
        requests.loc[ok, "latency_s"] * 1000,
        s=8,
        color="tab:green",
        label=f"200 ({int(ok.sum())})",
    )
    latency.scatter(
        requests.loc[~ok, "t"],
        requests.loc[~ok, "latency_s"] * 1000,
        s=14,
        marker="x",
        color=STATE_COLORS["firing"],
        label=_("503 or no answer ({count})").format(count=int((~ok).sum())),
    )
    latency.set_yscale("log")
    for ax in (latency, state):
        ax.axvspan(events["going"], events["back"], color="grey", alpha=0.15)
        if "closed" in events:
            ax.axvline(events["closed"], color="tab:green", linestyle="--", linewidth=1)
    latency.text(
        events["going"],
        1.01,
        " " + _("PostgreSQL away"),
        transform=latency.get_xaxis_transform(),
        fontsize="small",
        va="bottom",
    )
    for replica, samples in breaker.groupby("replica"):
        state.step(samples["t"], samples["open"], where="post", label=str(replica))
    state.set_yticks([0, 1], [_("closed"), _("open")])
    _decorate(latency, title=_("Latency of each request"), ylabel="ms")
    _decorate(
        state, title=_("circuit_breaker_open per replica (its /metrics)"), xlabel=_("seconds")
    )
    return fig


def backup_timeline(
    writes: pd.DataFrame,
    events: Mapping[str, float],
    *,
    title: str = N_("Writes across a backup, a disaster and a restore"),
) -> Figure:
    """Every acknowledged write (`t` in s, `kept`: read back after the restore) as the running
    count of writes, kept ones in green and lost ones in red; `events` (name -> t) drawn as
    vertical lines. The red stretch is the recovery point, in writes and in seconds."""
    fig = _figure(1, 1, title, height=4.2)
    [ax] = fig.axes
    count = np.arange(1, len(writes) + 1)
    kept = writes["kept"].astype(bool).to_numpy()
    ax.scatter(
        writes["t"][kept],
        count[kept],
        s=6,
        color="tab:green",
        label=_("kept ({count})").format(count=int(kept.sum())),
    )
    ax.scatter(
        writes["t"][~kept],
        count[~kept],
        s=10,
        marker="x",
        color=STATE_COLORS["firing"],
        label=_("lost ({count})").format(count=int((~kept).sum())),
    )
    for i, (name, t) in enumerate(events.items()):
        ax.axvline(t, color=f"C{i + 4}", linestyle="--", linewidth=1, label=translate(name))
    _decorate(ax, xlabel=_("seconds"), ylabel=_("acknowledged writes"), integer=True)
    return fig


def restart_under_load(
    df: pd.DataFrame, restarts: pd.DataFrame, *, title: str = N_("Replicas restarted under load")
) -> Figure:
    """Answered and failed requests per second (a LoadResult's frame) with each restarted
    replica's not-ready window shaded (`restarts`: replica, stopped_s, ready_s)."""
    fig = _figure(1, 1, title)
    [ax] = fig.axes
    failed = df["error"].notna() | (df["status"].fillna(0) >= 500)
    second = df["scheduled_s"].astype(float).floordiv(1)
    counts = pd.DataFrame({"ok": ~failed, "failed": failed}).groupby(second).sum()
    ax.step(counts.index, counts["ok"], where="post", color="tab:green", label=_("answered"))
    ax.step(counts.index, counts["failed"], where="post", color="tab:red", label=_("failed"))
    colors = ("tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:gray")
    for i, row in enumerate(restarts.to_dict("records")):
        ax.axvspan(
            float(row["stopped_s"]),
            float(row["ready_s"]),
            color=colors[i % len(colors)],
            alpha=0.15,
            label=_("{replica} not ready").format(replica=row["replica"]),
        )
    ax.set_title(
        ngettext(
            "{failed} of {count} request failed", "{failed} of {count} requests failed", len(df)
        ).format(failed=int(failed.sum()), count=len(df)),
        fontsize="small",
    )
    ax.set_ylim(bottom=0)
    _decorate(
        ax,
        xlabel=_("seconds since the load started"),
        ylabel=_("requests / s"),
        integer=True,
        legend=False,
    )
    fig.legend(loc="outside lower center", ncol=3, fontsize="small")  # off the data
    return fig


def hpa_decisions(
    df: pd.DataFrame,
    *,
    target: float,
    low: int,
    high: int,
    tolerance: float = 0.1,
    measured: pd.DataFrame | None = None,
    title: str = N_("What the HPA decides"),
) -> Figure:
    """Desired replicas against CPU utilization (%), one step line per `current` replica
    count (`df`: current, utilization, desired), with the target, tolerance band and bounds;
    `measured` points (utilization, desired, label) are drawn on top."""
    fig = _figure(1, 1, title)
    [ax] = fig.axes
    for current, group in df.groupby("current"):
        ax.step(
            group["utilization"],
            group["desired"],
            where="post",
            label=ngettext(
                "from {count} replica", "from {count} replicas", int(group["current"].iloc[0])
            ).format(count=current),
        )
    ax.axvspan(
        target * (1 - tolerance),
        target * (1 + tolerance),
        color="tab:gray",
        alpha=0.2,
        label=_("tolerance ±{tolerance}: no change").format(tolerance=f"{tolerance:.0%}"),
    )
    ax.axvline(
        target,
        color="black",
        linestyle=":",
        label=_("target {target} %").format(target=f"{target:g}"),
    )
    for bound, name in ((low, "minReplicas"), (high, "maxReplicas")):
        ax.axhline(bound, color=STATE_COLORS["firing"], linestyle="--", linewidth=0.8)
        ax.annotate(
            f"{name} {bound}",
            (0, bound),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize="small",
        )
    if measured is not None:
        ax.scatter(
            measured["utilization"],
            measured["desired"],
            color="black",
            zorder=3,
            label=_("measured"),
        )
        for row in measured.to_dict("records"):
            ax.annotate(
                str(row["label"]),
                (row["utilization"], row["desired"]),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize="small",
            )
    _decorate(
        ax,
        xlabel=_("average CPU utilization (% of the request)"),
        ylabel=_("desired replicas"),
        integer=True,
    )
    return fig


def path_matrix(
    verdicts: pd.DataFrame, *, title: str = N_("NetworkPolicy: who may talk to whom")
) -> Figure:
    """A heatmap of `lab.netpol.verdicts_frame` rows (source by target:port), allowed (green) or
    denied (red), blank where no path was evaluated; a verdict that differs from the intended
    one (`expected`) is marked with "!"."""
    columns = verdicts.assign(
        to=verdicts["target"] + ":" + verdicts["port"].astype(str) + "/" + verdicts["protocol"]
    )
    table = columns.pivot_table(index="source", columns="to", values="allowed", aggfunc="first")
    fig = _figure(1, 1, title, height=max(3.0, 0.55 * len(table) + 2.2))
    [ax] = fig.axes
    values = table.astype(float).to_numpy()
    from matplotlib.colors import ListedColormap

    ax.imshow(
        np.ma.masked_invalid(values),
        cmap=ListedColormap(["#d62828", "#2a9d8f"]),
        vmin=0,
        vmax=1,
        aspect="auto",
    )
    intended = columns[columns["expected"].notna()]
    wrong = set(
        zip(
            intended.loc[intended["allowed"] != intended["expected"], "source"],
            intended.loc[intended["allowed"] != intended["expected"], "to"],
            strict=True,
        )
    )
    for (i, source), (j, to) in (
        (a, b) for a in enumerate(table.index) for b in enumerate(table.columns)
    ):
        if not np.isnan(values[i, j]):
            mark = _("allowed") if values[i, j] else _("denied")
            mark += " !" if (source, to) in wrong else ""
            ax.text(j, i, mark, ha="center", va="center", color="white", fontsize="small")
    ax.set_xticks(range(len(table.columns)), list(table.columns), rotation=30, ha="right")
    ax.set_yticks(range(len(table.index)), list(table.index))
    ax.set_title(
        ngettext(
            "{count} path, {wrong} differ from the intended verdict (marked !)",
            "{count} paths, {wrong} differ from the intended verdict (marked !)",
            len(columns),
        ).format(count=len(columns), wrong=len(wrong)),
        fontsize="small",
    )
    _decorate(ax, xlabel=_("target:port/protocol"), ylabel=_("source"), legend=False)
    ax.grid(False)
    return fig


def blank_figure(title: str, *, width: float = 10.0, height: float = 3.8) -> Figure:
    """An empty figure (constrained layout, bold title) for callers that lay out their own axes,
    e.g. lab.dashboard's grid; returned Figures display inline under IPython. The title is
    shown in the learner's language: a notebook's (its catalog) or one of lab's (`N_`)."""
    _enable_inline_png()
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.suptitle(translate(title), fontweight="bold")
    return fig


def budget_remaining(
    df: pd.DataFrame,
    *,
    events: Mapping[str, pd.Timestamp] | None = None,
    title: str = N_("Error budget remaining"),
) -> Figure:
    """Budget left (%) over time, one panel per SLO (column `slo`, else one panel) so no SLO
    hides another, on one y axis that holds every value (the drop a lesson checks is in view),
    with the 50 % / 10 % lines of ErrorBudgetBurn and `events` (label -> time) marked."""
    groups = list(df.groupby("slo")) if "slo" in df and not df.empty else [("", df)]
    fig = _figure(1, len(groups), title)
    lowest = min(0.0, float(df["value"].min())) if not df.empty else 0.0
    for ax, (name, group) in zip(fig.axes, groups, strict=True):
        _lines(ax, group, label=_("budget remaining"), title=str(name) or None)
        for severity, threshold in BUDGET_THRESHOLDS:
            ax.axhline(
                threshold,
                color=STATE_COLORS["firing" if severity == "critical" else "pending"],
                linestyle="--",
                label=_("{severity}: below {threshold} %").format(
                    severity=severity, threshold=threshold
                ),
            )
        for label, when in (events or {}).items():
            ax.axvline(
                _date2num(pd.Timestamp(when)), color="grey", linestyle=":", label=translate(label)
            )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylim(lowest - 5, 105)
        if not group.empty:
            last = group.iloc[-1]
            ax.annotate(
                f"{last['value']:,.1f} %",
                (pd.Timestamp(last["timestamp"]), last["value"]),
                textcoords="offset points",
                xytext=(-10, 8),
                ha="right",
                fontsize="small",
            )
        _decorate(ax, xlabel=_("time (UTC)"), ylabel=_("% of the error budget left"))
    return fig
