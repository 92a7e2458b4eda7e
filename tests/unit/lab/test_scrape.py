"""lab.scrape reads a replica's own /metrics: the backend's metrics served by prometheus_client's
real exposition server, read back by name; labelled samples and missing names are told apart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from backend.app import default_registry
from backend.observe import Metrics
from lab import scrape
from lab.errors import LabError
from lab.net import LOOPBACK, free_port


@pytest.fixture
def replica() -> Iterator[tuple[str, CollectorRegistry]]:
    """A metrics endpoint exposing the backend's registry (process collector included)."""
    registry = default_registry()
    Metrics(registry).breaker_open.set(1)
    port = free_port()
    server, thread = start_http_server(port, LOOPBACK, registry=registry)
    try:
        yield f"http://{LOOPBACK}:{port}", registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_reads_the_breaker_gauge_and_the_process_cpu(
    replica: tuple[str, CollectorRegistry],
) -> None:
    url, registry = replica
    assert scrape.value(url, "circuit_breaker_open") == 1
    cpu = scrape.value(url, "process_cpu_seconds_total")
    assert 0 < cpu <= (registry.get_sample_value("process_cpu_seconds_total") or 0)


def test_labelled_samples_are_left_out(replica: tuple[str, CollectorRegistry]) -> None:
    url, registry = replica
    Counter("lessons_total", "x", ["lesson"], registry=registry).labels("03").inc()
    Gauge("plain", "x", registry=registry).set(7)
    found = scrape.samples(url)
    assert found["plain"] == 7
    assert "lessons_total" not in found


def test_a_missing_metric_and_a_dead_replica_say_what_to_do(
    replica: tuple[str, CollectorRegistry],
) -> None:
    url, _ = replica
    with pytest.raises(LabError, match="no unlabelled sample 'circuit_breaker_opened'"):
        scrape.value(url, "circuit_breaker_opened")
    with pytest.raises(LabError, match="ironclad-lab status"):
        scrape.samples(f"http://{LOOPBACK}:{free_port()}", timeout=0.5)
