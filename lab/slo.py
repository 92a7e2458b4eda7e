"""SLO math for the notebooks and the generator of the Prometheus rule files (one source).

Two SLOs on the backend's business routes (`/api/*`, chaos controls excluded), job
`ironclad-backend`: availability 99.9 % (responses that are not 5xx) and latency (95 % of
requests within 0.5 s, i.e. p95 < 500 ms), over a 30-day period.

Alerts: the SRE Workbook's multiwindow, multi-burn-rate alerts for each SLO
(`AvailabilityBurnRate`, `LatencyBurnRate`) and the original design's `HighErrorRate`,
`HighLatency`, `BackendDown`, `ErrorBudgetBurn`, plus `BackendTargetsMissing` (fewer backend
targets up than `MIN_BACKENDS`: BackendDown cannot see a pod that left discovery). Recording
rules: `slo:sli_error:ratio_rate<w>` (label `slo`) and `error_budget_remaining_percentage`
(label `slo`).

Two time scales. The lab scale divides every production duration by 60 (one production hour is
one lab minute) so alerts fire within seconds to minutes:

| what                          | production          | lab                 |
|-------------------------------|---------------------|---------------------|
| page, 14.4x burn              | 1h / 5m, for 2m     | 1m / 5s, for 2s     |
| page, 6x burn                 | 6h / 30m, for 15m   | 6m / 30s, for 15s   |
| ticket, 3x burn               | 1d / 2h, for 1h     | 24m / 2m, for 1m    |
| ticket, 1x burn               | 3d / 6h, for 3h     | 1h12m / 6m, for 3m  |
| SLO period (budget remaining) | 30d                 | 12h                 |
| HighErrorRate (> 5 %)         | rate 5m, for 5m     | rate 5s, for 5s     |
| HighLatency (p95 > 500 ms)    | rate 5m, for 10m    | rate 5s, for 10s    |
| BackendDown (up == 0)         | for 5m              | for 5s              |
| BackendTargetsMissing (< 3)   | for 5m              | for 5s              |
| ErrorBudgetBurn (< 50/10 %)   | for 10m             | for 10s             |
| scrape / rule evaluation      | 15s / 30s           | 1s / 1s             |
| budget rule evaluation        | 5m                  | 1s (not scaled)     |

Pages carry `severity: critical`, tickets `severity: warning`. Every alert's `runbook_url` is
`RUNBOOK_BASE_URL/<alert>.md` (docs/runbooks/ in the repository). The budget rules are evaluated
every 5 minutes in production because they read 30 days of samples; the lab evaluates them every
second like the other rules (12 h of a lab's few minutes of data is cheap), so a notebook reads the
budget of the requests it just sent within about two seconds instead of up to five.
ErrorBudgetBurn resolves only once the errors have left the SLO period (12 h at lab scale): a
blown budget stays blown.

`ironclad-lab generate rules` rewrites the committed rule files; with `--check` it fails on drift.
Over 400 lines on purpose: the SLO source and every rule generated from it stay in one file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lab.contract import JOB, SLI_SELECTOR

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
PERIOD_S = 30 * DAY

LATENCY_THRESHOLD_S = 0.5
RULE_FILE_NAME = "ironclad.rules.yaml"
# Where docs/runbooks/ is browsable. Alertmanager and Grafana show runbook_url as a link outside
# the repository, so it must be absolute (a relative path resolves against their own host).
# The repository's address is recorded nowhere else in this checkout: this is its one owner;
# change it (then run `ironclad-lab generate rules`) when the repository lives elsewhere.
RUNBOOK_BASE_URL = "https://github.com/ironclad-lab/ironclad-lab/blob/main/docs/runbooks"
# The backend replicas the SLO's capacity is planned for: the HPA's minReplicas and the local
# target's default replica count (tests/manifests/test_protections.py checks both).
MIN_BACKENDS = 3
HIGH_ERROR_RATIO = 0.05
RATE_WINDOW_S = 5 * MINUTE
BUDGET_THRESHOLDS = (("warning", 50), ("critical", 10))
FOR_S = {
    "HighErrorRate": 5 * MINUTE,
    "HighLatency": 10 * MINUTE,
    "BackendDown": 5 * MINUTE,
    "BackendTargetsMissing": 5 * MINUTE,
    "ErrorBudgetBurn": 10 * MINUTE,
}
MIN_SAMPLES_PER_WINDOW = 4


def prom_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration (`90` -> `1m30s`, `4320` -> `1h12m`)."""
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"duration {seconds!r} s: must be a positive whole number of seconds")
    rest, parts = int(seconds), []
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


@dataclass(frozen=True)
class Scale:
    """A time scale: production durations divided by `divisor`, plus its Prometheus timing
    (scrape and rule evaluation intervals, and the budget rules' own evaluation interval)."""

    name: str
    divisor: int
    scrape_interval_s: int
    eval_interval_s: int
    budget_eval_s: int

    def seconds(self, production_s: int) -> int:
        """A production duration at this scale."""
        scaled, rest = divmod(production_s, self.divisor)
        if rest:
            raise ValueError(
                f"{prom_duration(production_s)} does not divide by {self.divisor} "
                f"(scale {self.name}); pick whole-second production durations"
            )
        return scaled

    def duration(self, production_s: int) -> str:
        """A production duration at this scale, as a Prometheus duration."""
        return prom_duration(self.seconds(production_s))

    def rule_file(self, rules_dir: Path) -> Path:
        """The committed, generated rule file of this scale under `rules_dir`
        (`Settings.rules_dir`)."""
        return rules_dir / self.name / RULE_FILE_NAME


PRODUCTION = Scale("production", 1, scrape_interval_s=15, eval_interval_s=30, budget_eval_s=300)
LAB = Scale("lab", 60, scrape_interval_s=1, eval_interval_s=1, budget_eval_s=1)
SCALES = (PRODUCTION, LAB)


@dataclass(frozen=True)
class SLO:
    """A ratio SLO: `objective` of the events are good; the rest is the error budget."""

    name: str
    objective: float
    description: str
    alert: str

    @property
    def budget(self) -> float:
        """The allowed share of bad events (1 - objective)."""
        return 1 - self.objective

    def error_ratio_expr(self, window: str) -> str:
        """PromQL for the share of bad events over `window`, one series per job."""

        def rate(metric: str, extra: str = "") -> str:
            return f"sum by (job) (rate({metric}{{{SLI_SELECTOR}{extra}}}[{window}]))"

        if self.name == "availability":
            bad = rate("http_requests_total", ',status=~"5.."')
            total = rate("http_requests_total")
            # Until the first 5xx there is no error series at all: `or 0 * total` makes the
            # ratio 0 (not "no data"), so the budget reads 100 % and dashboards show a line.
            return f"(\n{bad}\nor\n0 * {total}\n)\n/\n{total}"
        good = rate("http_request_duration_seconds_bucket", f',le="{LATENCY_THRESHOLD_S:g}"')
        return f"1 - (\n{good}\n/\n{rate('http_request_duration_seconds_count')}\n)"

    def budget_since_expr(self, since: float) -> str:
        """PromQL for the % of error budget left among the requests counted after the unix time
        `since` (not a rolling window: what a lesson sends from a moment it chose), one series
        per job (`counted_since` says how)."""
        if self.name == "availability":
            total = counted_since("http_requests_total", since)
            bad = counted_since("http_requests_total", since, ',status=~"5.."')
            ratio = f"(({bad}) or 0 * {total}) / {total}"
        else:
            le = f',le="{LATENCY_THRESHOLD_S:g}"'
            good = counted_since("http_request_duration_seconds_bucket", since, le)
            ratio = f"1 - ({good} / {counted_since('http_request_duration_seconds_count', since)})"
        return f"100 * (1 - ({ratio}) / {self.budget:g})"


def counted_since(metric: str, since: float, matchers: str = "") -> str:
    """PromQL: how much the /api counter `metric` grew after the unix time `since`, per job.
    Each series minus its value at `since` (the `@` modifier); a series first seen after
    `since` counts whole. A counter reset inside the span (a restarted replica) is not
    handled: use it where the replicas serving the traffic keep running."""
    selector = f"{metric}{{{SLI_SELECTOR}{matchers}}}"
    return f"sum by (job) (({selector} - {selector} @ {since:.3f}) or {selector})"


AVAILABILITY = SLO(
    "availability", 0.999, "99.9 % of /api requests do not fail with 5xx", "AvailabilityBurnRate"
)
LATENCY = SLO(
    "latency", 0.95, "95 % of /api requests finish within 500 ms (p95 < 500 ms)", "LatencyBurnRate"
)
SLOS = (AVAILABILITY, LATENCY)


@dataclass(frozen=True)
class BurnWindow:
    """One multiwindow burn-rate alert tier (SRE Workbook, chapter 5), production durations."""

    severity: str
    burn_rate: float
    long_s: int
    short_s: int
    for_s: int


BURN_WINDOWS = (
    BurnWindow("critical", 14.4, HOUR, 5 * MINUTE, 2 * MINUTE),
    BurnWindow("critical", 6, 6 * HOUR, 30 * MINUTE, 15 * MINUTE),
    BurnWindow("warning", 3, DAY, 2 * HOUR, HOUR),
    BurnWindow("warning", 1, 3 * DAY, 6 * HOUR, 3 * HOUR),
)


# --- math for the notebooks ---------------------------------------------------------------


def burn_rate(error_ratio: float, objective: float) -> float:
    """How many times faster than sustainable the budget burns (1.0 = exactly used up)."""
    return error_ratio / (1 - objective)


def error_budget_s(objective: float, period_s: float = PERIOD_S) -> float:
    """The budget as seconds of total outage per period (99.9 % over 30 days: 2592 s)."""
    return (1 - objective) * period_s


def budget_remaining_percentage(error_ratio: float, objective: float) -> float:
    """What `error_budget_remaining_percentage` records for a period's error ratio."""
    return 100 * (1 - burn_rate(error_ratio, objective))


def time_to_exhaustion_s(rate: float, period_s: float = PERIOD_S) -> float:
    """Seconds until a full budget is gone at a constant burn rate (inf when not burning)."""
    return math.inf if rate <= 0 else period_s / rate


def detection_time_s(
    error_ratio: float, tier: BurnWindow, objective: float, scale: Scale = PRODUCTION
) -> float:
    """Seconds from a sudden, constant error ratio to the tier's alert firing (inf: never).

    Each window's average climbs linearly from 0 until it crosses the tier's threshold; the
    alert fires `for` after both crossed.
    """
    threshold = tier.burn_rate * (1 - objective)
    if error_ratio <= threshold:
        return math.inf
    fill = max(scale.seconds(tier.long_s), scale.seconds(tier.short_s)) * threshold / error_ratio
    return fill + scale.seconds(tier.for_s)


def windows_frame(scale: Scale = PRODUCTION, slo: SLO = AVAILABILITY) -> pd.DataFrame:
    """The burn-rate tiers at `scale` as a table (thresholds and budget spent when they fire)."""
    period = scale.seconds(PERIOD_S)
    return pd.DataFrame(
        [
            {
                "alert": slo.alert,
                "severity": tier.severity,
                "burn_rate": tier.burn_rate,
                "long_window": scale.duration(tier.long_s),
                "short_window": scale.duration(tier.short_s),
                "for": scale.duration(tier.for_s),
                "error_ratio_threshold": tier.burn_rate * slo.budget,
                "budget_spent_pct": 100 * tier.burn_rate * scale.seconds(tier.long_s) / period,
                "exhausts_budget_in": prom_duration(math.ceil(period / tier.burn_rate)),
            }
            for tier in BURN_WINDOWS
        ]
    )


# --- rule generation ------------------------------------------------------------------------


def ratio_record(window: str) -> str:
    """Name of the recording rule holding the SLO error ratio over `window`."""
    return f"slo:sli_error:ratio_rate{window}"


def _sli_windows(scale: Scale) -> list[int]:
    windows = {RATE_WINDOW_S} | {w for t in BURN_WINDOWS for w in (t.long_s, t.short_s)}
    scaled = sorted(scale.seconds(w) for w in windows)
    if scaled[0] < MIN_SAMPLES_PER_WINDOW * scale.scrape_interval_s:
        raise ValueError(
            f"scale {scale.name}: window {prom_duration(scaled[0])} holds fewer than "
            f"{MIN_SAMPLES_PER_WINDOW} scrapes at {scale.scrape_interval_s}s; "
            "shorten the scrape interval or lengthen the window"
        )
    return scaled


def runbook_url(alert: str) -> str:
    """The web address of an alert's runbook (docs/runbooks/<alert>.md)."""
    return f"{RUNBOOK_BASE_URL}/{alert}.md"


def _alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "team": "sre", **(extra_labels or {})},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(name),
        },
    }


def _burn_alerts(scale: Scale) -> list[dict[str, Any]]:
    period = scale.duration(PERIOD_S)
    rules = []
    for slo in SLOS:
        for tier in BURN_WINDOWS:
            long_w, short_w = scale.duration(tier.long_s), scale.duration(tier.short_s)
            sel = f'{{slo="{slo.name}"}}'
            expr = (
                f"{ratio_record(long_w)}{sel} / {slo.budget:g} > {tier.burn_rate:g}\nand\n"
                f"{ratio_record(short_w)}{sel} / {slo.budget:g} > {tier.burn_rate:g}"
            )
            rules.append(
                _alert(
                    slo.alert,
                    expr,
                    scale.duration(tier.for_s),
                    tier.severity,
                    f"{slo.name.capitalize()} error budget burning {tier.burn_rate:g}x too fast "
                    f"({long_w}/{short_w} windows).",
                    f"The {slo.name} SLO ({slo.description}) of {{{{ $labels.job }}}} is burning "
                    f"its {period} error budget {{{{ $value | humanize }}}}x faster than "
                    f"sustainable over the last {long_w} and {short_w}; at {tier.burn_rate:g}x "
                    "the whole budget is gone in "
                    f"{prom_duration(math.ceil(scale.seconds(PERIOD_S) / tier.burn_rate))}.",
                    {"slo": slo.name, "long_window": long_w, "short_window": short_w},
                )
            )
    return rules


def _classic_alerts(scale: Scale) -> list[dict[str, Any]]:
    rate_w = scale.duration(RATE_WINDOW_S)
    period = scale.duration(PERIOD_S)
    p95 = (
        f"histogram_quantile(0.95, sum by (job, le) (rate("
        f"http_request_duration_seconds_bucket{{{SLI_SELECTOR}}}[{rate_w}])))"
    )
    rules = [
        # The original `rate(5xx) > 0.05` compared a per-second rate, not a ratio, with 5 %.
        _alert(
            "HighErrorRate",
            f'{ratio_record(rate_w)}{{slo="availability"}} > {HIGH_ERROR_RATIO:g}',
            scale.duration(FOR_S["HighErrorRate"]),
            "critical",
            "More than 5 % of backend requests fail.",
            f"{{{{ $value | humanizePercentage }}}} of {{{{ $labels.job }}}} /api requests "
            f"answered 5xx over the last {rate_w} (threshold 5 %).",
        ),
        _alert(
            "HighLatency",
            f"{p95} > {LATENCY_THRESHOLD_S:g}",
            scale.duration(FOR_S["HighLatency"]),
            "warning",
            "Backend p95 latency is above 500 ms.",
            f"p95 latency of {{{{ $labels.job }}}} /api requests is "
            f"{{{{ $value | humanizeDuration }}}} over the last {rate_w} (threshold 500ms).",
        ),
        _alert(
            "BackendDown",
            f'up{{job="{JOB}"}} == 0',
            scale.duration(FOR_S["BackendDown"]),
            "critical",
            "A backend replica cannot be scraped.",
            "Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}): the "
            "process or pod is down or not answering /metrics.",
        ),
        # A deleted pod leaves discovery: its `up` series ends instead of reading 0, so only a
        # count against the expected replicas sees it. `or vector(0)`: with every target gone
        # count() returns nothing, which must read 0, not "no data". Not kube-state-metrics'
        # Deployment status: the same rule serves the local target (no API server there), needs
        # no extra cluster-wide component, and counts what is really scraped and answering.
        _alert(
            "BackendTargetsMissing",
            f'(count(up{{job="{JOB}"}} == 1) or vector(0)) < {MIN_BACKENDS}',
            scale.duration(FOR_S["BackendTargetsMissing"]),
            "critical",
            f"Fewer than {MIN_BACKENDS} backend replicas are up.",
            f"Only {{{{ $value }}}} {JOB} targets are up, {MIN_BACKENDS} expected: a replica "
            "left service discovery (pod deleted and not replaced, stuck Pending) or cannot "
            "be scraped.",
            {"job": JOB},
        ),
    ]
    rules += [
        _alert(
            "ErrorBudgetBurn",
            f"error_budget_remaining_percentage < {threshold}",
            scale.duration(FOR_S["ErrorBudgetBurn"]),
            severity,
            f"Less than {threshold} % of the {{{{ $labels.slo }}}} error budget is left.",
            f"The {{{{ $labels.slo }}}} error budget of {{{{ $labels.job }}}} has "
            f'{{{{ $value | printf "%.1f" }}}} % left over the last {period} '
            f"(alert below {threshold} %).",
        )
        for severity, threshold in BUDGET_THRESHOLDS
    ]
    return rules


def rule_groups(scale: Scale) -> dict[str, Any]:
    """The rule file of `scale` as data (what `promtool check rules` reads)."""
    period = scale.duration(PERIOD_S)
    sli = [
        {
            "record": ratio_record(prom_duration(w)),
            "labels": {"slo": slo.name},
            "expr": slo.error_ratio_expr(prom_duration(w)),
        }
        for w in _sli_windows(scale)
        for slo in SLOS
    ]
    budget = [
        {
            "record": ratio_record(period),
            "labels": {"slo": slo.name},
            "expr": slo.error_ratio_expr(period),
        }
        for slo in SLOS
    ]
    budget += [
        {
            "record": "error_budget_remaining_percentage",
            "labels": {"slo": slo.name},
            "expr": f'100 * (1 - {ratio_record(period)}{{slo="{slo.name}"}} / {slo.budget:g})',
        }
        for slo in SLOS
    ]
    interval = prom_duration(scale.eval_interval_s)
    return {
        "groups": [
            {"name": "ironclad-sli", "interval": interval, "rules": sli},
            {
                "name": "ironclad-slo-budget",
                "interval": prom_duration(scale.budget_eval_s),
                "rules": budget,
            },
            {
                "name": "ironclad-alerts",
                "interval": interval,
                "rules": _classic_alerts(scale) + _burn_alerts(scale),
            },
        ]
    }


def _header(scale: Scale) -> str:
    tiers = "\n".join(
        f"#   {t.severity:<8} {t.burn_rate:>4g}x  long {scale.duration(t.long_s):<6} "
        f"short {scale.duration(t.short_s):<4} for {scale.duration(t.for_s)}"
        for t in BURN_WINDOWS
    )
    classic = ", ".join(f"{name} for {scale.duration(s)}" for name, s in FOR_S.items())
    return (
        f"# GENERATED by `ironclad-lab generate rules` from lab/slo.py -- do not edit by hand.\n"
        f"# Scale: {scale.name} (production durations / {scale.divisor}); expects scrape "
        f"every {scale.scrape_interval_s}s, evaluation every {scale.eval_interval_s}s.\n"
        f"# SLOs: availability {AVAILABILITY.objective:.1%}, latency "
        f"{LATENCY.objective:.0%} within {LATENCY_THRESHOLD_S * 1000:g} ms; period "
        f"{scale.duration(PERIOD_S)}.\n"
        f"# Burn-rate tiers (AvailabilityBurnRate, LatencyBurnRate):\n{tiers}\n"
        f"# Rate window {scale.duration(RATE_WINDOW_S)}; {classic}.\n"
        "# Changes from the original design: HighErrorRate compares the 5xx *ratio* with\n"
        "# 5 % (the design compared a per-second rate); ErrorBudgetBurn reads a recorded\n"
        "# budget and has the design's two thresholds (warning < 50 %, critical < 10 %);\n"
        "# BackendTargetsMissing counts the targets up (a deleted pod leaves discovery, so\n"
        "# BackendDown never sees it); every alert's runbook_url is docs/runbooks/<alert>.md.\n"
    )


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as `|` blocks."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str)


def render(scale: Scale) -> str:
    """The committed text of the rule file of `scale`."""
    body = yaml.dump(
        rule_groups(scale), Dumper=_BlockDumper, sort_keys=False, width=100, allow_unicode=True
    )
    return _header(scale) + body


def stale_files(rules_dir: Path) -> list[Path]:
    """Committed rule files under `rules_dir` whose content differs from the generator's."""
    files = {scale: scale.rule_file(rules_dir) for scale in SCALES}
    return [f for scale, f in files.items() if not f.exists() or f.read_text() != render(scale)]
