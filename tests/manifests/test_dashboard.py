"""The Grafana dashboard: a valid JSON model, provisioned from the one committed file, whose
every PromQL expression parses and reads only metrics the backend exports or the rules record."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from backend.observe import Metrics, PoolCollector
from lab import manifests, slo
from lab.settings import get_settings

SETTINGS = get_settings()

DASHBOARD = SETTINGS.manifests / "monitoring" / "dashboards" / "ironclad.json"
GRAFANA = SETTINGS.manifests / "components" / "monitoring" / "grafana"
PANEL_TYPES = {"row", "timeseries", "stat", "table", "gauge", "bargauge"}
# Grafana fills these in before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def backend_metrics() -> set[str]:
    """Sample names the backend's registry exposes (counter -> _total, histogram -> _bucket...)."""
    registry = CollectorRegistry()
    Metrics(registry)
    registry.register(PoolCollector(dict))
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    return {
        fam.name + suffix for fam in registry.collect() for suffix in suffixes.get(fam.type, [""])
    }


def recorded_metrics() -> set[str]:
    return {
        r["record"]
        for scale in slo.SCALES
        for g in slo.rule_groups(scale)["groups"]
        for r in g["rules"]
        if "record" in r
    }


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


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (fails on selectors without a fixed name)."""
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


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
def test_panel_query_parses_and_uses_known_metrics(where: str, expr: str) -> None:
    unknown = metric_names(expr) - backend_metrics() - recorded_metrics() - PROMETHEUS_SERIES
    assert not unknown, f"{where}: {sorted(unknown)} are neither exported nor recorded"


def test_metric_check_can_fail() -> None:
    assert metric_names("rate(http_requests_totl[$__rate_interval])") - backend_metrics()
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


def test_slo_panels_read_the_recorded_budget() -> None:
    used = set().union(*(metric_names(e) for _, e in queries()))
    assert "error_budget_remaining_percentage" in used
    assert {"http_requests_total", "http_request_duration_seconds_bucket"} <= used
