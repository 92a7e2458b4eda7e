"""The Grafana dashboard: a valid JSON model, provisioned from the one committed file, whose
every PromQL expression parses and reads only metrics the backend exports or the rules record."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import manifests, slo, slo_rules
from lab.settings import get_settings

SETTINGS = get_settings()

DASHBOARD = SETTINGS.manifests / "monitoring" / "dashboards" / "ironclad.json"
GRAFANA = SETTINGS.manifests / "components" / "monitoring" / "grafana"
MetricNames = Callable[[str], set[str]]
PROMTOOL = shutil.which("promtool")
PANEL_TYPES = {"row", "timeseries", "stat", "table", "gauge", "bargauge"}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queries() -> list[tuple[str, str]]:
    """(panel title / refId, expr) of every target."""
    return [
        (f"{p['title']} / {t['refId']}", t["expr"])
        for p in dashboard()["panels"]
        for t in p.get("targets", [])
    ]


def test_dashboard_model_is_valid() -> None:
    model = dashboard()
    assert model["uid"]
    assert model["title"]
    assert isinstance(model["schemaVersion"], int)
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    datasource_uids = {
        d["uid"] for d in yaml.safe_load((GRAFANA / "datasources.yaml").read_text())["datasources"]
    }
    for panel in model["panels"]:
        where = f"panel {panel['id']} ({panel['title']})"
        assert panel["type"] in PANEL_TYPES, f"{where}: unknown type {panel['type']}"
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "hwxy"), where
        assert 0 < grid["w"] <= 24 - grid["x"], f"{where}: outside the 24 columns"
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in datasource_uids, f"{where}: unknown datasource"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, f"{where}: no queries"
        assert len(refs) == len(set(refs)), f"{where}: duplicate refIds {refs}"


@pytest.mark.parametrize(("where", "expr"), queries(), ids=[w for w, _ in queries()])
def test_panel_query_parses_and_uses_known_metrics(
    where: str, expr: str, known_metrics: frozenset[str], metric_names: MetricNames
) -> None:
    unknown = metric_names(expr) - known_metrics
    assert not unknown, f"{where}: {sorted(unknown)} are neither exported nor recorded"


def test_metric_check_can_fail(known_metrics: frozenset[str], metric_names: MetricNames) -> None:
    assert metric_names("rate(http_requests_totl[$__rate_interval])") - known_metrics
    with pytest.raises(ValueError, match="parenthesis"):
        metric_names("sum(rate(http_requests_total[5m])")


def test_dashboard_is_provisioned_from_this_file(kind_objects: list[manifests.Obj]) -> None:
    maps = [
        o
        for o in kind_objects
        if o["kind"] == "ConfigMap"
        and re.fullmatch(r"grafana-dashboards(-\w+)?", o["metadata"]["name"])
    ]
    assert [m["data"] for m in maps] == [{DASHBOARD.name: DASHBOARD.read_text()}]
    provider = yaml.safe_load((GRAFANA / "dashboards.yaml").read_text())["providers"][0]
    grafana = next(o for o in kind_objects if manifests.ident(o)[::2] == ("Deployment", "grafana"))
    mounts = {
        m["mountPath"]: m["name"]
        for m in grafana["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts.get(provider["options"]["path"]) == "dashboards"


def test_slo_panels_read_the_recorded_budget(metric_names: MetricNames) -> None:
    used = set().union(*(metric_names(e) for _, e in queries()))
    assert "error_budget_remaining_percentage" in used
    assert {"http_requests_total", "http_request_duration_seconds_bucket"} <= used


# --- every panel reads data on a healthy system ------------------------------------------------

NO_DATA_OK = {"Alerts"}  # an empty alert table is what a healthy system shows
HEALTHY_S = 300  # evaluated 5 minutes into steady, error-free traffic at the lab's 1 s scrape


def healthy_series() -> dict[str, str]:
    """A healthy lab: 3 replicas up, 5 req/s on /api/items all 200 and fast, 0.02 CPU cores
    each, chaos off, breaker closed, an idle pool. No 5xx series exists at all
    (prometheus-client creates a labelled child only when it is first used), exactly like a
    real backend that never failed."""
    steps = HEALTHY_S
    series: dict[str, str] = {}
    for i in range(3):
        inst = f'job="ironclad-backend",instance="10.0.0.{i}:3000"'
        api = f'{inst},method="GET",route="/api/items"'
        series[f"up{{{inst}}}"] = f"1x{steps}"
        series[f'http_requests_total{{{api},status="200"}}'] = f"0+5x{steps}"
        for le in ("0.1", "0.5", "1", "+Inf"):
            series[f'http_request_duration_seconds_bucket{{{api},le="{le}"}}'] = f"0+5x{steps}"
        series[f"http_request_duration_seconds_count{{{api}}}"] = f"0+5x{steps}"
        series[f"http_request_duration_seconds_sum{{{api}}}"] = f"0+0.1x{steps}"
        series[f"process_cpu_seconds_total{{{inst}}}"] = f"0+0.02x{steps}"  # 20 % of 100m
        for gauge, value in (
            ("http_requests_in_flight", 0),
            ("db_pool_size", 4),
            ("db_pool_available", 4),
            ("db_pool_requests_waiting", 0),
            ("chaos_enabled", 0),
            ("chaos_error_ratio", 0),
            ("chaos_latency_seconds", 0),
            ("circuit_breaker_open", 0),
        ):
            series[f"{gauge}{{{inst}}}"] = f"{value}x{steps}"
    return series


def test_every_panel_reads_data_on_a_healthy_system(
    tmp_path: Path, metric_names: MetricNames
) -> None:
    """Each panel query, run by promtool over healthy series (and the lab-scale rules, for the
    recorded budget), returns at least one sample that is a number (not NaN): `count(q == q)`
    drops NaN, and `> bool 0` turns "some data" into 1 and "no data" into nothing."""
    exprs = {
        where: expr.replace("$__rate_interval", "1m")
        for where, expr in queries()
        if where.split(" / ")[0] not in NO_DATA_OK
    }
    series = healthy_series()
    fed = {name.split("{")[0] for name in series}
    for where, expr in exprs.items():
        missing = {n for n in metric_names(expr) - fed if not n.startswith(("slo:", "error_"))}
        assert not missing, f"{where}: add healthy series for {sorted(missing)}"
    test = {
        "rule_files": [str(slo.LAB.rule_file(SETTINGS.rules_dir))],
        "evaluation_interval": "1s",
        "group_eval_order": [g["name"] for g in slo_rules.rule_groups(slo.LAB)["groups"]],
        "tests": [
            {
                "interval": "1s",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": f"count(({e}) == ({e})) > bool 0",
                        "eval_time": f"{HEALTHY_S}s",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    }
                    for e in exprs.values()
                ],
            }
        ],
    }
    path = tmp_path / "healthy.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    proc = subprocess.run(
        [PROMTOOL or "promtool", "test", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert PROMTOOL, "promtool not found: install the prometheus package (see .ci/run)"
    report = proc.stdout + proc.stderr
    # promtool quotes a failing expr like Go's %q, which for these strings is JSON's quoting.
    empty = [where for where, e in exprs.items() if json.dumps(f"count(({e})")[:-1] in report]
    assert proc.returncode == 0, f"panels without data on a healthy system: {empty}\n{report}"


def test_replicas_panel_turns_red_below_the_expected_count() -> None:
    panel = next(p for p in dashboard()["panels"] if p["title"] == "Replicas up")
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == ["red", "green"]
    assert steps[1]["value"] == slo.MIN_BACKENDS
    assert str(slo.MIN_BACKENDS) in panel["description"]


def cpu_request_cores(objects: list[manifests.Obj]) -> float:
    """The backend container's CPU request in cores ("100m" -> 0.1)."""
    backend = manifests.find(objects, "Deployment", "backend")
    cpu = str(backend["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])
    return int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def test_cpu_panel_divides_by_the_request_and_marks_the_hpa_target(
    kind_objects: list[manifests.Obj],
) -> None:
    """Issue 21 item 3: the saturation panel shows CPU per replica as the HPA computes it,
    usage / request, with the HPA's target as a threshold line: both numbers are the
    manifests' own, so changing the request or the target without the panel fails here."""
    panel = next(p for p in dashboard()["panels"] if p["title"].startswith("Saturation: CPU"))
    (target,) = panel["targets"]
    match = re.fullmatch(
        r"sum by \(instance\) \(rate\(process_cpu_seconds_total\{[^}]*\}"
        r"\[\$__rate_interval\]\)\) / ([0-9.]+)",
        target["expr"],
    )
    assert match, target["expr"]
    assert float(match[1]) == cpu_request_cores(kind_objects)
    hpa = manifests.find(kind_objects, "HorizontalPodAutoscaler", "backend-hpa")
    utilization = hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
    defaults = panel["fieldConfig"]["defaults"]
    steps = [s["value"] for s in defaults["thresholds"]["steps"]]
    assert defaults["unit"] == "percentunit"
    assert steps == [None, utilization / 100, 1.0], "thresholds: HPA target, then the request"
