"""create_app without a database: registries and the served route contract."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from backend.app import create_app
from backend.settings import Settings

SETTINGS = Settings(database_url="postgresql://nobody@127.0.0.1:9/none")


def test_default_registry_is_fresh_and_carries_process_metrics() -> None:
    first, second = create_app(SETTINGS), create_app(SETTINGS)
    assert first.metrics.registry is not second.metrics.registry
    assert b"process_cpu_seconds_total" in generate_latest(first.metrics.registry)


def test_injected_registry_gets_only_the_app_metrics() -> None:
    registry = CollectorRegistry()
    app = create_app(SETTINGS, registry)
    assert app.metrics.registry is registry
    names = {metric.name for metric in registry.collect()}
    assert {
        "http_requests",
        "http_request_duration_seconds",
        "http_requests_in_flight",
        "chaos_enabled",
        "chaos_latency_seconds",
        "chaos_error_ratio",
        "circuit_breaker_open",
        "db_pool_size",
        "db_pool_available",
    } <= names
    assert not any(name.startswith("process_") for name in names)


def test_routes_match_the_design_contract() -> None:
    paths = create_app(SETTINGS, CollectorRegistry()).litestar.openapi_schema.paths or {}
    assert set(paths) == {
        "/health/live",
        "/health/ready",
        "/api/items",
        "/api/items/{id}",
        "/api/work",
        "/api/chaos",
        "/api/chaos/enable",
        "/api/chaos/disable",
        "/api/chaos/latency/{ms}",
        "/api/chaos/errors/{rate}",
    }
    items = paths["/api/items"]
    item = paths["/api/items/{id}"]
    assert items.get is not None
    assert items.post is not None
    assert item.get is not None
    assert item.delete is not None
