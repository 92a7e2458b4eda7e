"""The Grafana dashboard: a valid JSON model, provisioned from the one committed file, whose
every PromQL expression parses and reads only metrics the backend exports or the rules record."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from lab import lint

DASHBOARD = lint.MANIFESTS_DIR / "monitoring" / "dashboards" / "ironclad.json"
GRAFANA = lint.MANIFESTS_DIR / "components" / "monitoring" / "grafana"
MetricNames = Callable[[str], set[str]]
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


def test_dashboard_is_provisioned_from_this_file(kind_objects: list[lint.Obj]) -> None:
    maps = [
        o
        for o in kind_objects
        if o["kind"] == "ConfigMap"
        and re.fullmatch(r"grafana-dashboards(-\w+)?", o["metadata"]["name"])
    ]
    assert [m["data"] for m in maps] == [{DASHBOARD.name: DASHBOARD.read_text()}]
    provider = yaml.safe_load((GRAFANA / "dashboards.yaml").read_text())["providers"][0]
    grafana = next(o for o in kind_objects if lint.ident(o)[::2] == ("Deployment", "grafana"))
    mounts = {
        m["mountPath"]: m["name"]
        for m in grafana["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts.get(provider["options"]["path"]) == "dashboards"


def test_slo_panels_read_the_recorded_budget(metric_names: MetricNames) -> None:
    used = set().union(*(metric_names(e) for _, e in queries()))
    assert "error_budget_remaining_percentage" in used
    assert {"http_requests_total", "http_request_duration_seconds_bucket"} <= used
