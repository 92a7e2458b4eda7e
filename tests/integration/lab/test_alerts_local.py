"""The alert lifecycle on the local target: real PostgreSQL, backends and Prometheus.

Traffic flows, injected errors (chaos) take HighErrorRate (lab-scale rules) to pending, then
firing; turning the faults off resolves it; a killed replica fires BackendDown and
BackendTargetsMissing until the target's supervisor restarts it. Every dashboard panel reads data
from the live Prometheus on the healthy system. Along the way lab.prom's frames and waits, and
the plots fed by them, run against the real Prometheus.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest

from lab import load, plots, slo
from lab.chaos import BackendChaos, kill_replica
from lab.errors import LabTimeoutError, PrometheusError
from lab.prom import Prom
from lab.settings import Settings
from lab.targets import Endpoints
from lab.targets.local import LocalTarget

REPLICAS = slo.MIN_BACKENDS  # fewer would fire BackendTargetsMissing from the start
DASHBOARD = Settings.from_env().manifests / "monitoring" / "dashboards" / "ironclad.json"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Endpoints]:
    """The local target, as `python -m lab up --target local --replicas 2` brings it up."""
    target = LocalTarget(Settings.from_env({}), replicas=REPLICAS)
    try:
        yield target.up()
    finally:
        target.down()


@pytest.fixture(scope="module")
def prom(stack: Endpoints) -> Prom:
    return Prom(stack.prometheus)


def test_prometheus_sees_every_replica_up(stack: Endpoints, prom: Prom) -> None:
    up = prom.wait_until(
        'up{job="ironclad-backend"}',
        lambda f: len(f) == REPLICAS and bool((f["value"] == 1).all()),
        timeout=30,
        progress=False,
    )
    assert sorted(up["instance"]) == sorted(u.removeprefix("http://") for u in stack.backends)
    assert prom.value('count(up{job="ironclad-backend"} == 1)') == REPLICAS
    assert prom.value('up{job="no-such-job"}') is None
    assert prom.value("time()") > 1.7e9  # a scalar result
    with pytest.raises(PrometheusError, match=f"returned {REPLICAS} series"):
        prom.value('up{job="ironclad-backend"}')
    with pytest.raises(PrometheusError, match="refused"):
        prom.query("sum(")
    targets = prom.targets()
    assert (targets["health"] == "up").all()
    assert set(targets["job"]) == {"ironclad-backend"}


def test_waits_time_out_with_the_last_value_and_a_next_step(prom: Prom) -> None:
    with pytest.raises(LabTimeoutError) as info:
        prom.wait_until(
            'up{job="ironclad-backend"}', lambda f: len(f) == 99, timeout=1.5, progress=False
        )
    assert re.search(r"instance[\s\S]*127\.0\.0\.1", str(info.value))
    assert "prom.targets()" in str(info.value)
    with pytest.raises(LabTimeoutError, match=r"BackendDown was inactive[\s\S]*/alerts"):
        prom.wait_for_alert("BackendDown", timeout=1.5, interval=0.5, progress=False)


def test_every_dashboard_panel_reads_data_on_the_healthy_system(
    stack: Endpoints, prom: Prom
) -> None:
    """Error-free traffic, all replicas up: every panel query (Grafana's $__rate_interval
    filled in for the 1 s scrape) returns numbers, the error panels 0, and
    BackendTargetsMissing stays inactive. The Alerts table is empty on a healthy system."""
    panels = [
        (f"{p['title']} / {t['refId']}", t["expr"].replace("$__rate_interval", "10s"))
        for p in json.loads(DASHBOARD.read_text())["panels"]
        for t in p.get("targets", [])
        if p["title"] != "Alerts"
    ]
    with load.background(stack.backends, rate=20, duration=120, progress=False):
        prom.wait_until(
            'sum(rate(http_requests_total{job="ironclad-backend",route="/api/items"}[10s]))',
            lambda f: not f.empty and f["value"].iloc[0] > 5,
            timeout=30,
            progress=False,
        )
        results, empty = {}, []
        for where, expr in panels:
            # The budget rules run every 5 s (lab scale): give each panel a few evaluations.
            try:
                results[where] = prom.wait_until(
                    expr,
                    lambda f: not f.empty and not f["value"].map(math.isnan).any(),
                    timeout=20,
                    progress=False,
                )
            except LabTimeoutError as exc:
                empty.append(f"{where}: {exc}")
    assert not empty, "panels without data (or NaN) on a healthy system:\n" + "\n".join(empty)
    errors = results["Errors: share of /api requests answering 5xx / A"]
    assert errors["value"].tolist() == [0]
    assert results["Replicas up / A"]["value"].tolist() == [REPLICAS]
    prom.wait_for_alert("BackendTargetsMissing", "inactive", timeout=10, progress=False)


def test_injected_errors_fire_high_error_rate_which_resolves_when_faults_stop(
    stack: Endpoints, prom: Prom
) -> None:
    chaos = BackendChaos(stack.backends, stack.chaos_token)
    started = pd.Timestamp.now(tz="UTC")
    with load.background(stack.backends, rate=40, duration=300, progress=False) as traffic:
        try:
            prom.wait_until(
                'sum(rate(http_requests_total{job="ironclad-backend"}[5s]))',
                lambda f: not f.empty and f["value"].iloc[0] > 10,
                timeout=30,
                progress=False,
            )
            assert prom.alerts().query("alertname == 'HighErrorRate'").empty
            chaos.set_error_rate(0.5)
            chaos.enable()
            pending = prom.wait_for_alert(
                "HighErrorRate", "pending", timeout=60, interval=0.5, progress=False
            )
            assert pending["state"].tolist() == ["pending"]
            firing = prom.wait_for_alert(
                "HighErrorRate", "firing", timeout=60, interval=0.5, progress=False
            )
            assert firing["state"].tolist() == ["firing"]
            assert firing["severity"].iloc[0] == "critical"
            assert firing["value"].iloc[0] > 0.05
        finally:
            chaos.reset()
        prom.wait_for_alert("HighErrorRate", "inactive", timeout=60, interval=0.5, progress=False)
    assert 0.1 < traffic.result().summary()["error_ratio"] < 0.5

    history = prom.query_range(
        'ALERTS{alertname="HighErrorRate"}',
        start=started,
        end=pd.Timestamp.now(tz="UTC").to_pydatetime(),
        step="1s",
    )
    assert list(dict.fromkeys(history.sort_values("timestamp")["alertstate"])) == [
        "pending",
        "firing",
    ]
    timeline = plots.alert_timeline(history)
    assert [t.get_text() for t in timeline.axes[0].get_yticklabels()] == ["HighErrorRate"]
    signals = plots.golden_signals(prom, window=timedelta(minutes=2), rate_window="5s")
    assert signals.axes[1].get_lines()[0].get_ydata().max() > 5  # % of 5xx during the fault


def test_a_crash_looping_replica_fires_backend_down_and_targets_missing(
    stack: Endpoints, prom: Prom
) -> None:
    """The local target keeps a killed replica's target in file_sd, so it reads `up == 0`
    (BackendDown) and the count of targets up drops below MIN_BACKENDS (BackendTargetsMissing);
    killed twice, it waits out the crash back-off (LAB_RESTART_DELAY), as lesson 07's victim
    does; both resolve once the supervisor restarted it."""
    kill_replica(stack.backends[0], times=2)
    missing = prom.wait_for_alert(
        "BackendTargetsMissing", "firing", timeout=60, interval=0.5, progress=False
    )
    assert missing["value"].tolist() == [REPLICAS - 1]
    prom.wait_for_alert("BackendDown", "firing", timeout=60, interval=0.5, progress=False)
    for name in ("BackendTargetsMissing", "BackendDown"):
        prom.wait_for_alert(name, "inactive", timeout=120, interval=0.5, progress=False)
