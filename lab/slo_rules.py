"""The Prometheus rule files generated from the SLO source (`lab.slo`): the SLI recording
rules, the error budget, the multiwindow burn-rate alerts and the original design's alerts, at
each time scale (the table in lab/slo.py's docstring). `render()` is a committed file's text;
`stale_files()` lists committed files that drifted (`ironclad-lab generate rules [--check]`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from lab.contract import JOB, SLI_SELECTOR
from lab.slo import (
    AVAILABILITY,
    BUDGET_THRESHOLDS,
    BURN_WINDOWS,
    FOR_S,
    HIGH_ERROR_RATIO,
    LATENCY,
    LATENCY_THRESHOLD_S,
    MIN_BACKENDS,
    MIN_SAMPLES_PER_WINDOW,
    PERIOD_S,
    RATE_WINDOW_S,
    SCALES,
    SLOS,
    Scale,
    prom_duration,
    ratio_record,
    runbook_url,
)


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
