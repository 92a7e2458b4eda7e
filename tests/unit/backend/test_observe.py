"""The outer ASGI wrapper around a real (database-free) Litestar app, with a fresh registry."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from backend.logs import JsonFormatter, request_id_var
from backend.observe import UNMATCHED_ROUTE, Metrics, ObservedApp, PoolCollector


@get("/things/{thing_id:int}")
async def thing(thing_id: FromPath[int]) -> dict[str, int]:
    return {"id": thing_id}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def client(registry: CollectorRegistry) -> Iterator[TestClient[ObservedApp]]:
    app = ObservedApp(Litestar([thing], logging_config=None), Metrics(registry))
    with TestClient(app) as test_client:
        yield test_client


def count(registry: CollectorRegistry, method: str, route: str, status: str) -> float | None:
    return registry.get_sample_value(
        "http_requests_total", {"method": method, "route": route, "status": status}
    )


def test_route_label_is_the_template_not_the_path(
    client: TestClient[ObservedApp], registry: CollectorRegistry
) -> None:
    for thing_id in (1, 22, 333):
        assert client.get(f"/things/{thing_id}").status_code == 200
    assert count(registry, "GET", "/things/{thing_id}", "200") == 3
    assert (
        registry.get_sample_value(
            "http_request_duration_seconds_count", {"method": "GET", "route": "/things/{thing_id}"}
        )
        == 3
    )


def test_404_and_405_share_the_unmatched_label(
    client: TestClient[ObservedApp], registry: CollectorRegistry
) -> None:
    assert client.get("/nope/123").status_code == 404
    assert client.get("/things/abc").status_code == 404
    assert client.post("/things/7").status_code == 405
    assert count(registry, "GET", UNMATCHED_ROUTE, "404") == 2
    assert count(registry, "POST", UNMATCHED_ROUTE, "405") == 1


def test_labels_never_carry_raw_paths_or_odd_methods(
    client: TestClient[ObservedApp], registry: CollectorRegistry
) -> None:
    client.get("/things/98765")
    client.get("/random/55555")
    client.request("PURGE", "/things/4444")
    labels = {
        sample.labels.get("route")
        for metric in registry.collect()
        for sample in metric.samples
        if "route" in sample.labels
    }
    assert labels == {"/things/{thing_id}", UNMATCHED_ROUTE}
    assert count(registry, "OTHER", UNMATCHED_ROUTE, "405") == 1


def test_request_id_is_honoured_or_generated(client: TestClient[ObservedApp]) -> None:
    assert (
        client.get("/things/1", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = {client.get("/things/1").headers["x-request-id"] for _ in range(3)}
    assert len(generated) == 3
    assert all(len(g) == 32 for g in generated)
    too_long = client.get("/things/1", headers={"X-Request-ID": "x" * 500})
    assert too_long.headers["x-request-id"] != "x" * 500


def test_in_flight_returns_to_zero(
    client: TestClient[ObservedApp], registry: CollectorRegistry
) -> None:
    client.get("/things/1")
    client.get("/missing")
    assert registry.get_sample_value("http_requests_in_flight") == 0


def test_access_log_carries_request_fields(
    client: TestClient[ObservedApp], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="backend.access"):
        client.get("/things/5", headers={"X-Request-ID": "log-me"})
    (record,) = [r for r in caplog.records if r.name == "backend.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request"
    assert line["route"] == "/things/{thing_id}"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["duration_ms"] >= 0


def test_json_formatter_one_line_with_request_id() -> None:
    record = logging.LogRecord("backend", logging.ERROR, __file__, 1, "bad %s", ("thing",), None)
    token = request_id_var.set("rid-1")
    try:
        text = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["msg"] == "bad thing"
    assert entry["level"] == "ERROR"
    assert entry["request_id"] == "rid-1"
    assert entry["time"].endswith("+00:00")


def test_pool_collector_exports_the_pool_stats(registry: CollectorRegistry) -> None:
    stats = {"pool_min": 4, "pool_max": 10, "pool_size": 6, "pool_available": 2, "requests_num": 99}
    registry.register(PoolCollector(lambda: stats))
    assert registry.get_sample_value("db_pool_size") == 6
    assert registry.get_sample_value("db_pool_available") == 2
    assert registry.get_sample_value("db_pool_max") == 10
    assert registry.get_sample_value("db_pool_requests_waiting") == 0
    stats["pool_size"] = 9
    assert registry.get_sample_value("db_pool_size") == 9


def test_histogram_buckets_are_cumulative_with_inclusive_bounds(
    registry: CollectorRegistry,
) -> None:
    http = Metrics(registry).http
    for seconds in (0.5, 0.3, 7.0, 20.0):
        http.observe("GET", "/r", "200", seconds)

    def bucket(le: str) -> float | None:
        return registry.get_sample_value(
            "http_request_duration_seconds_bucket", {"method": "GET", "route": "/r", "le": le}
        )

    assert [bucket("0.25"), bucket("0.4"), bucket("0.5"), bucket("10.0"), bucket("+Inf")] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert (
        registry.get_sample_value(
            "http_request_duration_seconds_sum", {"method": "GET", "route": "/r"}
        )
        == 27.8
    )
    assert (
        registry.get_sample_value(
            "http_requests_total", {"method": "GET", "route": "/r", "status": "200"}
        )
        == 4
    )
