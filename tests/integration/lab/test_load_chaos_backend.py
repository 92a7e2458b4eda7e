"""Load and chaos against real backend processes (`python -m backend`) on a real PostgreSQL."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from lab import load
from lab.chaos import BackendChaos, Experiment
from lab.errors import ChaosError
from lab.net import free_port, port_is_open
from lab.postgres import PostgresServer
from lab.procs import ManagedProcess, wait_until

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

TOKEN = "observe-test-token"
REPO = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def backends(
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[str]]:
    """Two backend replicas on free ports, sharing the session PostgreSQL."""
    logs = tmp_path_factory.mktemp("backends")
    procs, urls = [], []
    for index in range(2):
        port = free_port()
        env = {
            **os.environ,
            **postgres.env(),
            "PORT": str(port),
            "CHAOS_TOKEN": TOKEN,
            "LOG_LEVEL": "WARNING",
            "DRAIN_DELAY_S": "0",
        }
        procs.append(
            ManagedProcess(
                f"backend-{index}",
                [sys.executable, "-m", "backend"],
                logs / f"backend-{index}.log",
                env,
                cwd=REPO,
            ).start()
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for proc, url in zip(procs, urls, strict=True):
            wait_until(
                lambda u=url, p=proc: ready(u, p),
                timeout=60,
                what=f"{url} ready",
                on_timeout=proc.log_tail,
            )
        yield urls
    finally:
        for proc in procs:
            proc.stop()


def ready(url: str, proc: ManagedProcess) -> bool:
    proc.ensure_running()
    return (
        port_is_open(int(url.rsplit(":", 1)[1]))
        and requests.get(f"{url}/health/ready", timeout=2).status_code == 200
    )


@pytest.fixture
def chaos(backends: list[str]) -> Iterator[BackendChaos]:
    chaos = BackendChaos(backends, TOKEN)
    yield chaos
    chaos.reset()


def served(url: str, route: str = "/api/items") -> float:
    """GET requests the backend counted for `route` (from its own /metrics)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels.get("route") == route
        and sample.labels.get("method") == "GET"
    )


@pytest.mark.slow
def test_load_holds_200_rps_on_the_backend(backends: list[str]) -> None:
    before = [served(url) for url in backends]
    result = load.run(backends, rate=200, duration=10, progress=False)
    summary = result.summary()
    assert summary["requests"] == 2000
    assert summary["achieved_rate"] == pytest.approx(200, rel=0.05)
    assert summary["throughput"] == pytest.approx(200, rel=0.05)
    assert summary["error_ratio"] == 0
    # every request reached a replica, round-robin, as the backends themselves counted
    assert [served(url) - b for url, b in zip(backends, before, strict=True)] == [1000, 1000]
    df = result.df
    assert df["status"].eq(200).all()
    assert (df["latency_s"] >= df["sent_s"] - df["scheduled_s"]).all()
    assert summary["p50"] <= summary["p95"] <= summary["p99"]


def test_post_load_creates_items(backends: list[str]) -> None:
    result = load.run(
        backends,
        rate=50,
        requests=10,
        method="POST",
        body={"name": "load test", "description": None},
        progress=False,
    )
    assert result.df["status"].eq(201).all()


def test_latency_applies_only_while_chaos_is_enabled(chaos: BackendChaos) -> None:
    touched = chaos.set_latency(300)
    assert touched["url"].tolist() == chaos.urls
    assert touched["latency_ms"].tolist() == [300, 300]
    assert not touched["enabled"].any()
    assert load.run(chaos.urls, rate=20, requests=10, progress=False).summary()["p50"] < 0.2
    assert chaos.enable()["enabled"].all()
    slow = load.run(chaos.urls, rate=20, requests=10, progress=False).summary()
    assert slow["p50"] >= 0.3
    assert requests.get(f"{chaos.urls[0]}/health/ready", timeout=0.25).status_code == 200


def test_injected_errors_show_in_the_error_ratio_and_reset_clears_them(chaos: BackendChaos) -> None:
    chaos.set_error_rate(0.5)
    chaos.enable()
    faulty = load.run(chaos.urls, rate=100, requests=200, progress=False)
    assert 0.3 < faulty.summary()["error_ratio"] < 0.7
    assert set(faulty.df["status"].dropna()) == {200, 500}
    state = chaos.reset()
    assert state[["enabled", "latency_ms", "error_ratio"]].values.tolist() == [[False, 0, 0.0]] * 2
    assert load.run(chaos.urls, rate=100, requests=50, progress=False).summary()["error_ratio"] == 0


def test_wrong_token_and_bad_values_are_refused_with_a_next_step(chaos: BackendChaos) -> None:
    with pytest.raises(ChaosError, match=r"answered 403[\s\S]*chaos_token"):
        BackendChaos(chaos.urls, "wrong-token").enable()
    with pytest.raises(ChaosError, match="answered 422"):
        chaos.set_latency(20_000)
    with pytest.raises(ChaosError, match="answered 422"):
        chaos.set_error_rate(1.5)
    assert not chaos.status()["enabled"].any()


def test_experiment_deviates_under_injected_errors_and_rolls_back(chaos: BackendChaos) -> None:
    def few_errors() -> bool:
        return bool(
            load.run(chaos.urls, rate=100, requests=50, progress=False).summary()["error_ratio"]
            < 0.05
        )

    journal = Experiment(
        "the backend keeps answering when faults are injected",
        steady_state=[("error ratio < 5 %", few_errors)],
        method=[("all requests fail", lambda: chaos.set_error_rate(1)), chaos.enable],
        rollbacks=[chaos.reset],
    ).run()
    assert journal.status == "deviated"
    frame = journal.to_frame()
    assert frame["phase"].tolist() == [
        "steady-state before",
        "method",
        "method",
        "steady-state after",
        "rollback",
    ]
    assert frame["ok"].tolist() == [True, True, True, False, True]
    assert not chaos.status()["enabled"].any()
    assert few_errors()
