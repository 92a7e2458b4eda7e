"""The provisioned Grafana dashboard, drawn as one matplotlib figure from the live Prometheus.

`render(prom, Dashboard.read(settings))` runs every panel's PromQL (the dashboard JSON's own
expressions, Grafana's variables filled in as Grafana fills them) as a range query and lays the
panels out on Grafana's 24-column grid (`gridPos`): titles, units, thresholds, legends. It works
on every target: on local there is no Grafana, on kind it shows next to the Grafana link what the
provisioned dashboard shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure

from lab.errors import PrometheusError
from lab.i18n import _
from lab.plots import RangeQuerier, blank_figure
from lab.settings import Settings
from lab.slo import HOUR, LAB, PRODUCTION, Scale, prom_duration

GRID_COLUMNS = 24  # Grafana's grid width
# Grafana's own minimum for $__rate_interval: four scrape intervals (the datasource's
# `timeInterval`), so that every rate() window holds enough samples.
RATE_INTERVAL_SCRAPES = 4
# Grafana unit id -> (factor applied to the value, what the axis says)
UNITS = {
    "reqps": (1.0, "requests / s"),
    "percentunit": (100.0, "%"),
    "percent": (1.0, "%"),
    "s": (1.0, "seconds"),
    "short": (1.0, ""),
}
UNIT_INCHES = 0.45  # height of one grid row in the figure
DPI = 72  # a 14-inch-wide figure at 72 dpi: readable, and quick to encode as PNG
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def variables(scale: Scale) -> dict[str, str]:
    """Grafana's built-in variables as Grafana fills them for a datasource scraped at `scale`:
    `$__rate_interval` four scrapes, `$__interval` one scrape, `$__range` one production hour."""
    return {
        "$__rate_interval": prom_duration(RATE_INTERVAL_SCRAPES * scale.scrape_interval_s),
        "$__interval": prom_duration(scale.scrape_interval_s),
        "$__range": scale.duration(HOUR),
    }


# Production: `1m`, `15s`, `1h` (what tests/manifests parse the panels with).
GRAFANA_VARIABLES = variables(PRODUCTION)
LAB_VARIABLES = variables(LAB)  # what the lab's Grafana (datasource timeInterval 1s) uses


def substitute(expr: str, values: dict[str, str]) -> str:
    """`expr` with Grafana's variables replaced (longest name first: `$__interval` is a prefix
    of nothing else, but `$__rate_interval` must not be read as `$__rate` + `_interval`)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return expr


@dataclass(frozen=True)
class Query:
    """One panel target: its refId, PromQL and legend format."""

    ref: str
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A dashboard panel as far as drawing it needs: type, place on the grid, unit, thresholds."""

    id: int
    title: str
    kind: str  # "row", "timeseries", "stat", "table"
    x: int
    y: int
    w: int
    h: int
    unit: str = "short"
    queries: tuple[Query, ...] = ()
    thresholds: tuple[tuple[float | None, str], ...] = ()  # (from value, colour); None = base

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Panel:
        defaults = raw.get("fieldConfig", {}).get("defaults", {})
        steps = defaults.get("thresholds", {}).get("steps", [])
        grid = raw["gridPos"]
        return cls(
            id=raw["id"],
            title=raw["title"],
            kind=raw["type"],
            x=grid["x"],
            y=grid["y"],
            w=grid["w"],
            h=grid["h"],
            unit=defaults.get("unit", "short"),
            queries=tuple(
                Query(t["refId"], t["expr"], t.get("legendFormat", ""))
                for t in raw.get("targets", [])
            ),
            thresholds=tuple((s["value"], s["color"]) for s in steps),
        )

    def colour(self, value: float) -> str:
        """The threshold colour of `value` (Grafana: the last step whose value it reaches)."""
        colour = "grey"
        for start, step_colour in self.thresholds:
            if start is None or value >= start:
                colour = step_colour
        return colour


@dataclass(frozen=True)
class Dashboard:
    """A Grafana dashboard JSON model, read from the file Grafana is provisioned from."""

    title: str
    panels: tuple[Panel, ...]
    path: Path | None = None

    @classmethod
    def read(cls, settings: Settings) -> Dashboard:
        """The lab's dashboard, manifests/monitoring/dashboards/ironclad.json."""
        return cls.from_file(settings.manifests / "monitoring" / "dashboards" / "ironclad.json")

    @classmethod
    def from_file(cls, path: Path) -> Dashboard:
        model = json.loads(path.read_text())
        return cls(model["title"], tuple(Panel.from_json(p) for p in model["panels"]), path)

    @property
    def rows(self) -> int:
        """Height of the dashboard in grid units."""
        return max(p.y + p.h for p in self.panels)


@dataclass(frozen=True)
class Result:
    """What one panel query returned: the range frame, or the reason Prometheus refused it."""

    panel: Panel
    query: Query
    expr: str  # after substitution: what Prometheus ran
    frame: pd.DataFrame
    problem: str = ""


def fetch(
    prom: RangeQuerier,
    dashboard: Dashboard,
    *,
    values: dict[str, str] = LAB_VARIABLES,
    window: timedelta = timedelta(minutes=5),
    step: str | None = None,
) -> list[Result]:
    """Run every panel query over the last `window` (a refused query is kept, with its reason)."""
    step = step or f"{max(1, int(window.total_seconds() // 150))}s"
    results = []
    for panel in dashboard.panels:
        for query in panel.queries:
            expr = substitute(query.expr, values)
            try:
                frame, problem = prom.query_range(expr, start=window, step=step), ""
            except PrometheusError as exc:
                frame, problem = pd.DataFrame(columns=["timestamp", "value"]), exc.problem
            results.append(Result(panel, query, expr, frame, problem))
    return results


def summary(results: list[Result]) -> pd.DataFrame:
    """One row per panel query: panel, refId, series, last value, problem, the PromQL run."""
    rows = []
    for r in results:
        last = _last_values([r])
        rows.append(
            {
                "panel": r.panel.title,
                "ref": r.query.ref,
                "series": len(last),
                "last": sum(v for _, v in last) if last else None,
                "problem": r.problem,
                "query": r.expr,
            }
        )
    return pd.DataFrame(rows)


def render(
    prom: RangeQuerier,
    dashboard: Dashboard,
    *,
    values: dict[str, str] = LAB_VARIABLES,
    window: timedelta = timedelta(minutes=5),
) -> Figure:
    """The dashboard as one figure, every panel fed by its own PromQL from `prom`."""
    return draw(dashboard, fetch(prom, dashboard, values=values, window=window), window=window)


def draw(dashboard: Dashboard, results: list[Result], *, window: timedelta) -> Figure:
    """Lay `results` out as Grafana would: each panel at its gridPos, rows as section titles."""
    fig = blank_figure(
        _("{title} — last {span}").format(title=dashboard.title, span=_span(window)),
        width=14,
        height=UNIT_INCHES * dashboard.rows + 0.6,
    )
    fig.set_dpi(DPI)
    fig.set_layout_engine("none")  # the grid below places every panel itself
    for panel in dashboard.panels:
        ax = fig.add_axes(_rect(panel, dashboard.rows, fig.get_figheight()))
        mine = [r for r in results if r.panel is panel]
        if panel.kind == "row":
            _row(ax, panel)
        elif panel.kind == "stat":
            _stat(ax, panel, mine)
        elif panel.kind == "table":
            _table(ax, panel, mine)
        else:
            _timeseries(ax, panel, mine)
    return fig


def _rect(panel: Panel, rows: int, fig_height: float) -> tuple[float, float, float, float]:
    """The panel's axes in figure fractions: its grid cell minus room for the title (above),
    the tick labels (below and left) and a gap between panels."""
    unit = UNIT_INCHES / fig_height  # one grid row as a fraction of the figure's height
    top = 1 - 0.6 / fig_height - panel.y * unit  # below the figure's title
    if panel.kind == "row":
        return (
            panel.x / GRID_COLUMNS,
            top - panel.h * unit,
            panel.w / GRID_COLUMNS,
            panel.h * unit,
        )
    left = panel.x / GRID_COLUMNS + 0.04
    width = panel.w / GRID_COLUMNS - 0.05
    below = 0.6 * unit if panel.kind == "timeseries" else 0.15 * unit
    height = panel.h * unit - 0.55 * unit - below
    return (left, top - 0.55 * unit - height, width, height)


def _series(result: Result) -> list[tuple[str, pd.DataFrame]]:
    """(legend, frame) per series, the legend filled from the series' labels."""
    frame = result.frame
    labels = [c for c in frame.columns if c not in ("timestamp", "value")]
    if frame.empty:
        return []
    groups = list(frame.groupby(labels, dropna=False)) if labels else [((), frame)]
    out = []
    for key, group in groups:
        values = dict(zip(labels, key if isinstance(key, tuple) else (key,), strict=True))
        legend = _legend(result.query.legend, values)
        out.append((legend or result.query.ref, group.sort_values("timestamp")))
    return out


def _span(window: timedelta) -> str:
    seconds = window.total_seconds()
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _legend(template: str, labels: dict[str, Any]) -> str:
    """Grafana's legendFormat: `{{route}}` becomes the series' `route` label."""
    return LEGEND_LABEL.sub(lambda m: str(labels.get(m[1], "")), template)


def _factor(panel: Panel) -> tuple[float, str]:
    return UNITS.get(panel.unit, (1.0, panel.unit))


def _row(ax: Axes, panel: Panel) -> None:
    ax.set_axis_off()
    ax.text(0, 0.5, panel.title, fontsize="large", fontweight="bold", va="center")


def _no_data(ax: Axes, results: list[Result]) -> None:
    problems = "; ".join(r.problem for r in results if r.problem)
    ax.text(
        0.5,
        0.5,
        _("query refused: {problems}").format(problems=problems) if problems else _("No data"),
        ha="center",
        va="center",
        wrap=True,
        transform=ax.transAxes,
        color="grey",
    )


def _timeseries(ax: Axes, panel: Panel, results: list[Result]) -> None:
    factor, axis = _factor(panel)
    drawn = 0
    for result in results:
        for legend, group in _series(result):
            ax.plot(pd.to_datetime(group["timestamp"]), group["value"] * factor, label=legend)
            drawn += 1
    for start, colour in panel.thresholds:
        if start is not None:
            ax.axhline(start * factor, color=colour, linestyle="--", linewidth=1)
    if not drawn:
        _no_data(ax, results)
    elif ax.get_ylim()[0] < 0 and all(
        (r.frame["value"].dropna() >= 0).all() for r in results
    ):  # like Grafana: no negative axis for values that cannot be negative
        ax.set_ylim(bottom=0)
    ax.set_title(panel.title, fontsize="medium", loc="left")
    ax.xaxis.set_major_locator(AutoDateLocator(maxticks=6))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    ax.set_ylabel(axis)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize="small")
    if drawn:
        ax.legend(loc="upper left", fontsize="x-small")


def _last_values(results: list[Result]) -> list[tuple[str, float]]:
    return [(legend, float(g["value"].iloc[-1])) for r in results for legend, g in _series(r)]


def _stat(ax: Axes, panel: Panel, results: list[Result]) -> None:
    """Grafana's stat panel, colorMode background: the last value, coloured by threshold."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(panel.title, fontsize="medium", loc="left")
    values = _last_values(results)
    if not values:
        _no_data(ax, results)
        return
    factor, axis = _factor(panel)
    suffix = " %" if axis == "%" else f" {axis}" if axis else ""
    for i, (legend, value) in enumerate(values):
        left, width = i / len(values), 1 / len(values)
        colour = panel.colour(value) if panel.thresholds else "tab:blue"
        ax.axvspan(left, left + width, color=colour, alpha=0.55, transform=ax.transAxes)
        ax.text(
            left + width / 2,
            0.55,
            f"{value * factor:.4g}{suffix}",
            ha="center",
            va="center",
            fontsize="x-large",
            fontweight="bold",
            transform=ax.transAxes,
        )
        ax.text(
            left + width / 2,
            0.2,
            legend,
            ha="center",
            va="center",
            fontsize="small",
            transform=ax.transAxes,
        )


def _table(ax: Axes, panel: Panel, results: list[Result]) -> None:
    """Grafana's table panel: the series present at the end of the window, one per line."""
    ax.set_axis_off()
    ax.set_title(panel.title, fontsize="medium", loc="left")
    end = max((r.frame["timestamp"].max() for r in results if not r.frame.empty), default=None)
    lines = [
        legend
        for r in results
        for legend, group in _series(r)
        if end is not None and group["timestamp"].iloc[-1] == end
    ]
    if not lines:
        _no_data(ax, results)
        return
    ax.text(
        0,
        1,
        "\n".join(lines[:8]),
        va="top",
        fontsize="small",
        family="monospace",
        transform=ax.transAxes,
    )
