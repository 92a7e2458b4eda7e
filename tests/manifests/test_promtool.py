"""promtool over the generated rules and both Prometheus configs, with a unit test per alert.

Each alert, at both scales, must be silent before its `for:`, firing after it (with the exact
labels and rendered annotations), and resolved once the cause stops. The series are written at
the scale's scrape interval and evaluated at its rule interval, so these also prove the lab
scale fires within seconds to minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import contract, manifests, slo, slo_rules
from lab.settings import get_settings

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

SETTINGS = get_settings()

MANIFESTS = SETTINGS.manifests
PROMTOOL = shutil.which("promtool")
JOB = contract.JOB
API = f'job="{JOB}",method="GET",route="/api/items"'
# Evaluations with the window right after the cause stops; margins absorb scrape/eval phase.
MARGIN_EVALS = 2


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; a missing promtool fails (it is a declared system dependency)."""
    assert PROMTOOL, "promtool not found: install the prometheus package (see .ci/run)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)


def test_rule_files_pass_promtool_check() -> None:
    proc = promtool("check", "rules", *(str(s.rule_file(SETTINGS.rules_dir)) for s in slo.SCALES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_local_prometheus_config_passes_promtool_check() -> None:
    proc = promtool("check", "config", str(MANIFESTS / "monitoring" / "local" / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def in_cluster_config(objects: list[manifests.Obj]) -> dict[str, Any]:
    """The in-cluster Prometheus configuration as rendered (generated for the namespace)."""
    (config,) = [
        o["data"]["prometheus.yml"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus-config")
    ]
    parsed: dict[str, Any] = yaml.safe_load(config)
    return parsed


def test_in_cluster_prometheus_config_passes_promtool_check(
    tmp_path: Path, kind_objects: list[manifests.Obj]
) -> None:
    """Debian's promtool is built without kubernetes_sd, so the SD block is swapped for an
    equivalent file_sd before the check; everything else (relabeling, rules, globals) is the
    rendered config of this namespace. The SD block itself is checked by the next test."""
    config = in_cluster_config(kind_objects)
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_in_cluster_discovery_keeps_annotated_pods_at_their_port(
    kind_objects: list[manifests.Obj], namespace: str
) -> None:
    job = next(j for j in in_cluster_config(kind_objects)["scrape_configs"] if j["job_name"] == JOB)
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [namespace]}}]
    relabel = {r.get("target_label", r.get("action", "replace")): r for r in job["relabel_configs"]}
    keep = relabel["keep"]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert re.fullmatch(keep["regex"], "true")
    assert not re.fullmatch(keep["regex"], "false")
    address = relabel["__address__"]
    joined = ";".join(["10.244.1.7:8080", "3000"])  # pod IP:first port ; prometheus.io/port
    match = re.fullmatch(address["regex"], joined)
    assert match
    assert match.expand(address["replacement"].replace("$", "\\")) == "10.244.1.7:3000"
    assert {"namespace", "pod", "__metrics_path__"} <= set(relabel)


def test_local_config_loads_the_lab_rules() -> None:
    config = MANIFESTS / "monitoring" / "local" / "prometheus.yml"
    data = yaml.safe_load(config.read_text())
    assert [(config.parent / f).resolve() for f in data["rule_files"]] == [
        slo.LAB.rule_file(SETTINGS.rules_dir)
    ]
    assert data["global"]["evaluation_interval"] == f"{slo.LAB.eval_interval_s}s"
    assert data["global"]["scrape_interval"] == f"{slo.LAB.scrape_interval_s}s"
    assert [j["job_name"] for j in data["scrape_configs"]] == [JOB]


# --- series and expected alerts -----------------------------------------------------------


def counter(*segments: tuple[float, int]) -> str:
    """promtool series notation for a counter growing `inc` per sample for `steps` samples."""
    out, value = [], 0.0
    for inc, steps in segments:
        out.append(f"{value:g}+{inc:g}x{steps - 1}")
        value += inc * steps
    return " ".join(out)


def gauge(*segments: tuple[float, int]) -> str:
    """promtool series notation for a gauge holding `value` for `steps` samples."""
    return " ".join(f"{v:g}x{steps - 1}" for v, steps in segments)


@dataclass
class Case:
    """One promtool test group: series at the scrape interval and alert checks."""

    scale: slo.Scale
    series: dict[str, str]
    checks: list[dict[str, Any]] = field(default_factory=list)
    interval_s: int = 0  # sample interval; 0: the scale's scrape interval

    def expect(self, at_s: int, alertname: str, alerts: list[dict[str, Any]]) -> None:
        self.checks.append({"eval_time": f"{at_s}s", "alertname": alertname, "exp_alerts": alerts})

    def group(self) -> dict[str, Any]:
        return {
            "interval": f"{self.interval_s or self.scale.scrape_interval_s}s",
            "input_series": [{"series": k, "values": v} for k, v in self.series.items()],
            "alert_rule_test": self.checks,
        }


def rule_of(scale: slo.Scale, alertname: str, **labels: str) -> dict[str, Any]:
    """The generated alerting rule with this name whose labels include `labels`."""
    found = [
        r
        for g in slo_rules.rule_groups(scale)["groups"]
        for r in g["rules"]
        if r.get("alert") == alertname and labels.items() <= r["labels"].items()
    ]
    assert len(found) == 1, (alertname, labels, found)
    return found[0]


def expected(rule: dict[str, Any], series_labels: dict[str, str], value: str) -> dict[str, Any]:
    """The alert promtool must report: rule labels + series labels, annotations rendered."""
    labels = {**series_labels, **rule["labels"]}

    def render(text: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        return re.sub(r"\{\{ \$value[^}]*\}\}", value, text)

    return {
        "exp_labels": labels,
        "exp_annotations": {k: render(v) for k, v in rule["annotations"].items()},
    }


def first_eval_after(scale: slo.Scale, t: int) -> int:
    """The first rule evaluation at or after `t` seconds."""
    g = scale.eval_interval_s
    return -(-t // g) * g


# --- cases per alert ------------------------------------------------------------------------


def traffic_case(scale: slo.Scale, target: slo.SLO, bad_s: int, good_s: int) -> tuple[Case, int]:
    """`bad_s` of errors (availability: 50 % 5xx) or slow requests (latency: all 0.5-0.75 s)
    from t=0, then `good_s` of healthy traffic. Returns the case and when the bad part ended."""
    s = scale.scrape_interval_s
    bad_steps = bad_s // s + 2 * MARGIN_EVALS
    good_steps = good_s // s + 4 * MARGIN_EVALS
    if target is slo.AVAILABILITY:
        series = {
            f'http_requests_total{{{API},status="200"}}': counter((5, bad_steps + good_steps)),
            f'http_requests_total{{{API},status="500"}}': counter((5, bad_steps), (0, good_steps)),
        }
    else:
        fast, slow = (10, good_steps), (0, bad_steps)
        series = {
            f'http_request_duration_seconds_bucket{{{API},le="0.4"}}': counter(slow, fast),
            f'http_request_duration_seconds_bucket{{{API},le="0.5"}}': counter(slow, fast),
            f'http_request_duration_seconds_bucket{{{API},le="0.75"}}': counter(
                (10, bad_steps), fast
            ),
            f'http_request_duration_seconds_bucket{{{API},le="+Inf"}}': counter(
                (10, bad_steps), fast
            ),
            f"http_request_duration_seconds_count{{{API}}}": counter((10, bad_steps), fast),
        }
    return Case(scale, series), bad_steps * s


def check_burn(scale: slo.Scale, target: slo.SLO) -> Case:
    """Every tier fires in turn while the budget burns, and all resolve once the longest short
    window has forgotten the errors."""
    g = scale.eval_interval_s
    start = first_eval_after(scale, scale.scrape_interval_s)
    longest_short = max(scale.seconds(t.short_s) for t in slo.BURN_WINDOWS)
    longest_for = max(scale.seconds(t.for_s) for t in slo.BURN_WINDOWS)
    case, bad_end = traffic_case(scale, target, start + longest_for, longest_short)
    value = "500" if target is slo.AVAILABILITY else "20"  # error ratio / (1 - objective)

    def firing(upto: int) -> list[dict[str, Any]]:
        return [
            expected(
                rule_of(scale, target.alert, long_window=scale.duration(t.long_s)),
                {"job": JOB},
                value,
            )
            for t in slo.BURN_WINDOWS[:upto]
        ]

    for i, tier in enumerate(slo.BURN_WINDOWS):
        fires_at = start + scale.seconds(tier.for_s)
        case.expect(fires_at - g, target.alert, firing(i))
        case.expect(fires_at + g, target.alert, firing(i + 1))
    case.expect(bad_end + longest_short + MARGIN_EVALS * g, target.alert, [])
    return case


def check_classic(scale: slo.Scale, alertname: str) -> Case:
    """HighErrorRate / HighLatency: fire `for` after the errors / slow requests start and
    resolve once the rate window has forgotten them."""
    target = slo.AVAILABILITY if alertname == "HighErrorRate" else slo.LATENCY
    g = scale.eval_interval_s
    start = first_eval_after(scale, scale.scrape_interval_s)
    fires_at = start + scale.seconds(slo.FOR_S[alertname])
    case, bad_end = traffic_case(scale, target, fires_at + g, scale.seconds(slo.RATE_WINDOW_S))
    rule = rule_of(scale, alertname)
    if alertname == "HighErrorRate":
        alert = expected(rule, {"job": JOB, "slo": "availability"}, "50%")
    else:
        alert = expected(rule, {"job": JOB}, "737.5ms")  # p95 inside the 0.5-0.75 s bucket
    case.expect(fires_at - g, alertname, [])
    case.expect(fires_at + g, alertname, [alert])
    case.expect(bad_end + scale.seconds(slo.RATE_WINDOW_S) + MARGIN_EVALS * g, alertname, [])
    return case


def check_backend_down(scale: slo.Scale) -> Case:
    s, g = scale.scrape_interval_s, scale.eval_interval_s
    for_s = scale.seconds(slo.FOR_S["BackendDown"])
    up_steps, down_steps = 10, (for_s + 4 * g) // s + 1
    down_at = up_steps * s
    case = Case(
        scale,
        {
            f'up{{job="{JOB}",instance="a"}}': gauge((1, up_steps + down_steps + 20)),
            f'up{{job="{JOB}",instance="b"}}': gauge((1, up_steps), (0, down_steps), (1, 20)),
        },
    )
    rule = rule_of(scale, "BackendDown")
    fires_at = first_eval_after(scale, down_at) + for_s
    case.expect(down_at - g, "BackendDown", [])
    case.expect(fires_at - g, "BackendDown", [])
    case.expect(fires_at + g, "BackendDown", [expected(rule, {"job": JOB, "instance": "b"}, "0")])
    case.expect(first_eval_after(scale, (up_steps + down_steps) * s) + g, "BackendDown", [])
    return case


def check_targets_missing(scale: slo.Scale) -> list[Case]:
    """BackendTargetsMissing. A deleted pod leaves discovery: Prometheus ends its series with a
    staleness marker (`stale`) and the target is gone, never `up == 0`. Fires `for` after
    fewer than MIN_BACKENDS targets are up, reads 0 when all of them vanished, and stays
    silent when the count never drops below MIN_BACKENDS (HPA scale-down from 4 to 3) or a
    replacement pod is up again within `for`."""
    s, g = scale.scrape_interval_s, scale.eval_interval_s
    for_s = scale.seconds(slo.FOR_S["BackendTargetsMissing"])
    rule = rule_of(scale, "BackendTargetsMissing")
    assert slo.MIN_BACKENDS == 3, "the series below model 3 expected replicas"
    up_steps = 10
    gone_at = up_steps * s
    gone_steps = (for_s + 4 * g) // s + 1
    back_at = gone_at + gone_steps * s
    fires_at = first_eval_after(scale, gone_at) + for_s

    def up(instance: str) -> str:
        return f'up{{job="{JOB}",instance="{instance}"}}'

    steady = gauge((1, up_steps + gone_steps + 20))
    vanishes = f"{gauge((1, up_steps))} stale"
    # One replica vanishes; its replacement (a new pod, a new instance) shows up later.
    one = Case(
        scale,
        {
            up("a"): steady,
            up("b"): steady,
            up("c"): vanishes,
            up("d"): f"_x{up_steps + gone_steps - 1} {gauge((1, 20))}",
        },
    )
    one.expect(gone_at - g, "BackendTargetsMissing", [])
    one.expect(fires_at - g, "BackendTargetsMissing", [])
    one.expect(fires_at + g, "BackendTargetsMissing", [expected(rule, {}, "2")])
    one.expect(fires_at + g, "BackendDown", [])  # why this alert exists: `up == 0` never sees it
    one.expect(first_eval_after(scale, back_at) + g, "BackendTargetsMissing", [])
    # Every replica vanishes: count() has nothing to count, `or vector(0)` makes it 0.
    every = Case(scale, {up(i): vanishes for i in "abc"})
    every.expect(fires_at - g, "BackendTargetsMissing", [])
    every.expect(fires_at + g, "BackendTargetsMissing", [expected(rule, {}, "0")])
    # Must not fire: 4 -> 3 replicas (HPA scale-down: e leaves for good), later c is replaced
    # by d within half of `for` (2 up for less than `for`).
    replaced_at = 2 * up_steps
    quick = max(1, for_s // (2 * s))
    total = replaced_at + gone_steps + 10
    silent = Case(
        scale,
        {
            up("a"): gauge((1, total)),
            up("b"): gauge((1, total)),
            up("e"): f"{gauge((1, up_steps))} stale",
            up("c"): f"{gauge((1, replaced_at))} stale",
            up("d"): f"_x{replaced_at + quick - 1} {gauge((1, total - replaced_at - quick))}",
        },
    )
    for at in range(0, total * s, g):
        silent.expect(at, "BackendTargetsMissing", [])
    return [one, every, silent]


def budget_alerts(scale: slo.Scale, target: slo.SLO) -> list[dict[str, Any]]:
    remaining = "-49900.0" if target is slo.AVAILABILITY else "-1900.0"
    return [
        expected(
            rule_of(scale, "ErrorBudgetBurn", severity=sev),
            {"job": JOB, "slo": target.name},
            remaining,
        )
        for sev, _ in slo.BUDGET_THRESHOLDS
    ]


def check_budget(scale: slo.Scale) -> Case:
    """ErrorBudgetBurn: silent before `for`, firing after (both thresholds)."""
    g = scale.eval_interval_s
    for_s = scale.seconds(slo.FOR_S["ErrorBudgetBurn"])
    fires_by = scale.budget_eval_s + for_s + 2 * g
    case, _ = traffic_case(scale, slo.AVAILABILITY, fires_by, 0)
    case.expect(for_s, "ErrorBudgetBurn", [])
    case.expect(fires_by, "ErrorBudgetBurn", budget_alerts(scale, slo.AVAILABILITY))
    return case


def check_budget_recovery(scale: slo.Scale) -> tuple[Case, int]:
    """ErrorBudgetBurn resolves only once the errors left the SLO period: sampled coarsely."""
    period_steps = 240
    step = scale.seconds(slo.PERIOD_S) // period_steps
    bad = 10
    case = Case(
        scale,
        {
            f'http_requests_total{{{API},status="200"}}': counter((5, bad + period_steps + 10)),
            f'http_requests_total{{{API},status="500"}}': counter((5, bad), (0, period_steps + 10)),
        },
        interval_s=step,
    )
    case.expect((bad - 1) * step, "ErrorBudgetBurn", budget_alerts(scale, slo.AVAILABILITY))
    case.expect((bad + period_steps + 2) * step, "ErrorBudgetBurn", [])
    return case, step


CASES: dict[str, Callable[[slo.Scale], list[Case]]] = {
    "HighErrorRate": lambda sc: [check_classic(sc, "HighErrorRate")],
    "HighLatency": lambda sc: [check_classic(sc, "HighLatency")],
    "BackendDown": lambda sc: [check_backend_down(sc)],
    "BackendTargetsMissing": check_targets_missing,
    "ErrorBudgetBurn": lambda sc: [check_budget(sc)],
    "AvailabilityBurnRate": lambda sc: [check_burn(sc, slo.AVAILABILITY)],
    "LatencyBurnRate": lambda sc: [check_burn(sc, slo.LATENCY)],
}


def alert_names() -> set[str]:
    return {
        r["alert"]
        for g in slo_rules.rule_groups(slo.LAB)["groups"]
        for r in g["rules"]
        if "alert" in r
    }


def test_every_alert_has_a_promtool_case() -> None:
    assert alert_names() == set(CASES)


def write_test_file(path: Path, scale: slo.Scale, cases: list[Case], interval_s: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(scale.rule_file(SETTINGS.rules_dir))],
                "evaluation_interval": f"{interval_s}s",
                # promtool otherwise evaluates groups in random order; recording groups come first.
                "group_eval_order": [g["name"] for g in slo_rules.rule_groups(scale)["groups"]],
                "tests": [c.group() for c in cases],
            },
            sort_keys=False,
            width=1000,
        )
    )
    return path


def outcome(proc: subprocess.CompletedProcess[str]) -> str:
    """promtool's verdict: empty when every check passed, else its report."""
    return "" if proc.returncode == 0 else proc.stdout[-4000:] + proc.stderr[-4000:]


def lifecycle_jobs() -> dict[str, tuple[slo.Scale, list[Case], int]]:
    """Every promtool test file: one per alert and scale, plus the budget recovery per scale."""
    jobs = {
        f"{name}-{scale.name}": (scale, make(scale), scale.eval_interval_s)
        for scale in slo.SCALES
        for name, make in CASES.items()
    }
    for scale in slo.SCALES:
        case, step = check_budget_recovery(scale)
        jobs[f"ErrorBudgetBurn-recovery-{scale.name}"] = (scale, [case], step)
    return jobs


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """promtool's verdict per job, run concurrently (each run is single-threaded)."""
    directory = tmp_path_factory.mktemp("promtool")
    files = {
        key: write_test_file(directory / f"{key}.yaml", *job)
        for key, job in lifecycle_jobs().items()
    }
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        procs = dict(
            zip(
                files,
                pool.map(lambda f: promtool("test", "rules", str(f)), files.values()),
                strict=True,
            )
        )
    return {key: outcome(proc) for key, proc in procs.items()}


@pytest.mark.parametrize("scale", slo.SCALES, ids=[s.name for s in slo.SCALES])
@pytest.mark.parametrize("alertname", sorted(CASES))
def test_alert_lifecycle(lifecycle: dict[str, str], scale: slo.Scale, alertname: str) -> None:
    """Silent before `for:`, firing after it, resolved when the cause stops."""
    assert not lifecycle[f"{alertname}-{scale.name}"]


@pytest.mark.parametrize("scale", slo.SCALES, ids=[s.name for s in slo.SCALES])
def test_error_budget_burn_resolves_when_errors_leave_the_period(
    lifecycle: dict[str, str], scale: slo.Scale
) -> None:
    assert not lifecycle[f"ErrorBudgetBurn-recovery-{scale.name}"]


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The harness can fail: expecting HighErrorRate before its `for:` is reported by promtool."""
    case = check_classic(slo.LAB, "HighErrorRate")
    case.checks[0]["exp_alerts"] = case.checks[1]["exp_alerts"]
    path = write_test_file(tmp_path / "wrong.yaml", slo.LAB, [case], slo.LAB.eval_interval_s)
    assert "HighErrorRate" in outcome(promtool("test", "rules", str(path)))


@pytest.mark.parametrize("scale", slo.SCALES, ids=[s.name for s in slo.SCALES])
def test_budget_is_full_before_the_first_error(tmp_path: Path, scale: slo.Scale) -> None:
    """With traffic but no 5xx series at all, the availability SLI is 0 and the budget 100 %
    (not "no data", which would leave the dashboard's budget panel empty)."""
    s = scale.scrape_interval_s
    steps = scale.seconds(slo.PERIOD_S) // s // 50 + 10  # a while into the period
    case = Case(scale, {f'http_requests_total{{{API},status="200"}}': counter((5, steps))})
    group = case.group()
    group["promql_expr_test"] = [
        {
            "expr": 'error_budget_remaining_percentage{slo="availability"}',
            "eval_time": f"{(steps - 1) * s}s",
            "exp_samples": [
                {
                    "labels": f'error_budget_remaining_percentage{{job="{JOB}",'
                    'slo="availability"}',
                    "value": 100,
                }
            ],
        }
    ]
    group.pop("alert_rule_test")
    path = tmp_path / "budget.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(scale.rule_file(SETTINGS.rules_dir))],
                "evaluation_interval": f"{scale.eval_interval_s}s",
                "group_eval_order": [g["name"] for g in slo_rules.rule_groups(scale)["groups"]],
                "tests": [group],
            },
            sort_keys=False,
            width=1000,
        )
    )
    assert not outcome(promtool("test", "rules", str(path)))
