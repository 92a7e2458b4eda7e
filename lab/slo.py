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

The rule files are generated from this source by `lab.slo_rules` (`ironclad-lab generate rules`
rewrites the committed files; with `--check` it fails on drift); this module holds the source
and the math the notebooks use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lab.contract import SLI_SELECTOR

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
PERIOD_S = 30 * DAY

LATENCY_THRESHOLD_S = 0.5
RULE_FILE_NAME = "ironclad.rules.yaml"
# Where docs/runbooks/ is browsable. Alertmanager and Grafana show runbook_url as a link outside
# the repository, so it must be absolute (a relative path resolves against their own host).
# The repository is pyproject.toml's [project.urls] Source (a test keeps the two together);
# change both (then run `ironclad-lab generate rules`) when the repository lives elsewhere.
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


# --- names the generated rules give (lab.slo_rules), read by the notebooks too --------------


def ratio_record(window: str) -> str:
    """Name of the recording rule holding the SLO error ratio over `window`."""
    return f"slo:sli_error:ratio_rate{window}"


def runbook_url(alert: str) -> str:
    """The web address of an alert's runbook (docs/runbooks/<alert>.md)."""
    return f"{RUNBOOK_BASE_URL}/{alert}.md"
