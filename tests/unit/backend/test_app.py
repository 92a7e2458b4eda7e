"""create_app without a database: registries and the served route contract."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

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
        "/api/chaos/memory/{mb}",
    }
    items = paths["/api/items"]
    item = paths["/api/items/{id}"]
    assert items.get is not None
    assert items.post is not None
    assert item.get is not None
    assert item.delete is not None


def test_openapi_documents_the_problem_json_error_responses() -> None:
    schema = create_app(SETTINGS, CollectorRegistry()).litestar.openapi_schema.to_schema()
    documented: dict[str, set[str]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert set(response["content"]) == {"application/problem+json"}, (
                        method,
                        path,
                        status,
                    )
                    documented.setdefault(status, set()).add(f"{method.upper()} {path}")
    assert {"GET /api/items/{id}", "DELETE /api/items/{id}"} <= documented["404"]
    assert {"POST /api/items"} <= documented["413"] & documented["415"] & documented["503"]
    assert "POST /api/chaos/memory/{mb}" in documented["422"]
    assert "GET /health/ready" in documented["503"]
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/api/items", "GET, OPTIONS, POST"), ("/api/items/7", "DELETE, GET, OPTIONS")],
)
def test_options_lists_every_method_of_the_path(path: str, allow: str) -> None:
    """No database needed: OPTIONS is answered by the router (lifespan not started)."""
    client = TestClient(create_app(SETTINGS, CollectorRegistry()))
    response = client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allow


# Prometheus 3's scrape Accept header (the cluster's Prometheus), OpenMetrics first
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, TEXT_FORMAT),
        ("text/plain;version=0.0.4;q=0.3,*/*;q=0.2", TEXT_FORMAT),  # Prometheus 2's default
        (
            PROMETHEUS_3_ACCEPT,
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
        ),
    ],
)
def test_metrics_negotiate_one_content_type(accept: str | None, content_type: str) -> None:
    client = TestClient(create_app(SETTINGS, CollectorRegistry()).litestar)  # no lifespan: no DB
    response = client.get("/metrics", headers={"accept": accept} if accept else {})
    assert response.status_code == 200
    assert response.headers.get_list("content-type") == [content_type]
    openmetrics = content_type.startswith("application/openmetrics-text")
    parse = openmetrics_families if openmetrics else text_families
    families = {family.name: family for family in parse(response.text)}  # each format's parser
    assert families["chaos_enabled"].type == "gauge"
    assert (response.text.splitlines()[-1] == "# EOF") == openmetrics
