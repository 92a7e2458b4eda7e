"""The HTTP API in-process (Litestar TestClient) on the session's real PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from backend.app import Backend

AUTH = {"Authorization": "Bearer test-chaos-token"}
Client = TestClient[Backend]
JSON = "application/json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def test_crud_round_trip(client: Client) -> None:
    created = client.post("/api/items", json={"name": "widget", "description": "blue"})
    assert created.status_code == 201
    item = created.json()
    assert item["name"] == "widget"
    assert item["description"] == "blue"
    rfc3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"
    assert re.fullmatch(rfc3339, item["created_at"])
    assert client.get(f"/api/items/{item['id']}").json() == item
    page = client.get("/api/items", params={"limit": 100, "offset": 0}).json()
    assert item in page["items"]
    assert page["limit"] == 100
    assert client.delete(f"/api/items/{item['id']}").status_code == 204
    assert_problem(client.get(f"/api/items/{item['id']}"), 404)
    assert_problem(client.delete(f"/api/items/{item['id']}"), 404)


def test_pagination_is_bounded_and_ordered(client: Client) -> None:
    ids = [client.post("/api/items", json={"name": f"p{i}"}).json()["id"] for i in range(3)]
    page = client.get("/api/items", params={"limit": 2, "offset": 0}).json()["items"]
    assert len(page) == 2
    everything = client.get("/api/items", params={"limit": 100}).json()["items"]
    listed = [i["id"] for i in everything]
    assert listed == sorted(listed)
    assert set(ids) <= set(listed) or len(listed) == 100


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/items", {"content": b"{not json", "headers": {"content-type": JSON}}),
        ("POST", "/api/items", {"json": {"name": 5}}),
        ("POST", "/api/items", {"json": {"name": "ok", "description": ["x"]}}),
        ("POST", "/api/items", {"json": {}}),
        ("POST", "/api/items", {"json": {"name": ""}}),
        ("POST", "/api/items", {"json": {"name": "x" * 201}}),
        ("POST", "/api/items", {"json": {"name": "ok", "description": "d" * 2001}}),
        ("POST", "/api/items", {"json": {"name": "nul\u0000byte"}}),
        (
            "POST",
            "/api/items",
            {"content": b'{"name": "\\ud800"}', "headers": {"content-type": JSON}},
        ),
        (
            "POST",
            "/api/items",
            {"content": b'{"name": "\xff\xfe"}', "headers": {"content-type": JSON}},
        ),
        ("POST", "/api/items", {"json": {"name": "ok", "unknown": 1}}),
        ("POST", "/api/items", {"json": ["name"]}),
        ("POST", "/api/items", {"content": b"name=x", "headers": {"content-type": "text/plain"}}),
        ("POST", "/api/items", {"data": {"name": "form"}}),
        (
            "POST",
            "/api/items",
            {"content": b"[" * 50_000 + b"]" * 50_000, "headers": {"content-type": JSON}},
        ),
        ("POST", "/api/items", {"json": {"name": "ok", "description": 10**30}}),
        ("GET", "/api/items?limit=%ff", {}),
        ("GET", "/api/items/%ff", {}),
        ("GET", "/api/work?ms=%c3%28", {}),
        ("GET", "/api/items?limit=0", {}),
        ("GET", "/api/items?limit=101", {}),
        ("GET", "/api/items?limit=abc", {}),
        ("GET", "/api/items?offset=-1", {}),
        ("GET", "/api/items?offset=99999999999", {}),
        ("GET", "/api/items/abc", {}),
        ("GET", "/api/items/0", {}),
        ("GET", "/api/items/99999999999999999999", {}),
        ("DELETE", "/api/items/-3", {}),
        ("GET", "/api/work?ms=1001", {}),
        ("GET", "/api/work?ms=fast", {}),
        ("GET", "/api/work", {}),
        ("PUT", "/api/items", {}),
        ("GET", "/no/such/route", {}),
    ],
)
def test_bad_input_gets_4xx_problem_details(
    client: Client, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = client.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert_problem(response, response.status_code)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": b'{"name": "plain"}', "headers": {"content-type": "text/plain"}},
        {"content": b'{"name": "undeclared"}'},
        {
            "content": b'{"name": "form"}',
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
    ],
)
def test_bodies_not_declared_as_json_are_415(client: Client, kwargs: dict[str, Any]) -> None:
    body = assert_problem(client.post("/api/items", **kwargs), 415)
    assert "application/json" in body["detail"]


def test_json_bodies_with_parameters_or_json_suffix_are_accepted(client: Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(
            "/api/items", content=b'{"name": "typed"}', headers={"content-type": content_type}
        )
        assert response.status_code == 201, (content_type, response.text)


def test_a_body_over_the_size_limit_is_413(client: Client) -> None:
    huge = b'{"name": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    assert_problem(client.post("/api/items", content=huge, headers={"content-type": JSON}), 413)


def in_script(zero: int) -> Callable[[int], str]:
    """Spell an id with the digits of another script (U+0660: Arabic-Indic, U+FF10: fullwidth)."""
    return lambda n: "".join(chr(zero + int(digit)) for digit in str(n))


@pytest.mark.parametrize(
    "spell",
    [
        in_script(0x660),
        in_script(0xFF10),
        "+{}".format,
        lambda n: f"{n // 10}_{n % 10}",
        " {}".format,
    ],
    ids=["arabic-indic", "fullwidth", "plus", "underscore", "space"],
)
def test_item_ids_are_ascii_digits_only(client: Client, spell: Callable[[int], str]) -> None:
    """int() reads all of these as a number; only plain ASCII digits may name an item."""
    item_id = client.post("/api/items", json={"name": "ascii"}).json()["id"]
    path = "/api/items/" + spell(item_id)
    assert_problem(client.get(path), 404)
    assert_problem(client.delete(path), 404)
    assert client.get(f"/api/items/{item_id}").status_code == 200  # nothing was deleted


def test_options_allow_lists_every_method(client: Client) -> None:
    assert client.options("/api/items").headers["allow"] == "GET, OPTIONS, POST"
    assert client.options("/api/items/1").headers["allow"] == "DELETE, GET, OPTIONS"


def test_work_burns_cpu_up_to_the_cap(client: Client) -> None:
    body = client.get("/api/work", params={"ms": 20}).json()
    assert body["ms"] == 20
    assert body["iterations"] > 0


def test_health_endpoints(app: Backend, client: Client) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").status_code == 200
    app.start_draining()
    assert "Draining" in assert_problem(client.get("/health/ready"), 503)["detail"]
    assert client.get("/health/live").status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/chaos", "/api/chaos/enable", "/api/chaos/latency/10", "/api/chaos/memory/0"]
)
def test_chaos_auth(client: Client, path: str) -> None:
    method = "GET" if path == "/api/chaos" else "POST"
    no_token = assert_problem(client.request(method, path), 401)
    assert "Bearer" in no_token["detail"]
    assert_problem(client.request(method, path, headers={"Authorization": "Bearer nope"}), 403)
    assert_problem(client.request(method, path, headers={"Authorization": "Basic x"}), 401)
    assert client.request(method, path, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/chaos/latency/10001",
        "/api/chaos/latency/-1",
        "/api/chaos/latency/1.5",
        "/api/chaos/latency/slow",
        "/api/chaos/errors/1.01",
        "/api/chaos/errors/-0.1",
        "/api/chaos/errors/nan",
        "/api/chaos/errors/inf",
        "/api/chaos/errors/half",
        "/api/chaos/errors/\u0661",  # Arabic-Indic 1: float() would read it as 1.0
        "/api/chaos/latency/\u0661\u0660",
        "/api/chaos/memory/1025",
        "/api/chaos/memory/-1",
        "/api/chaos/memory/64MB",
    ],
)
def test_chaos_bounds_are_422(client: Client, path: str) -> None:
    assert_problem(client.post(path, headers=AUTH), 422)
    assert client.get("/api/chaos", headers=AUTH).json() == {
        "enabled": False,
        "latency_ms": 0,
        "error_ratio": 0.0,
    }


@pytest.mark.parametrize("token", [None, " "])
def test_chaos_refused_when_no_token_is_configured(postgres: Any, token: str | None) -> None:
    """Unset and blank CHAOS_TOKEN alike: a blank one must not count as configured."""
    from litestar.testing import TestClient as Plain
    from prometheus_client import CollectorRegistry

    from backend.app import create_app
    from backend.settings import Settings

    env = postgres.env() if token is None else {**postgres.env(), "CHAOS_TOKEN": token}
    app = create_app(Settings.from_env(env), CollectorRegistry())
    with Plain(app) as unconfigured:
        for headers in (AUTH, {"Authorization": "Bearer  "}):
            body = assert_problem(unconfigured.post("/api/chaos/enable", headers=headers), 403)
            assert "CHAOS_TOKEN is not set" in body["detail"]


def metrics_text(client: Client) -> str:
    return client.get("/metrics").text


def test_setting_chaos_values_does_not_enable_faults(client: Client) -> None:
    client.post("/api/chaos/errors/1", headers=AUTH)
    client.post("/api/chaos/latency/10000", headers=AUTH)
    started = time.monotonic()
    assert client.get("/api/items").status_code == 200
    assert time.monotonic() - started < 5  # the 10 s latency was not applied
    text = metrics_text(client)
    assert "chaos_enabled 0.0" in text
    assert "chaos_latency_seconds 10.0" in text
    assert "chaos_error_ratio 1.0" in text


def test_chaos_errors_visible_in_responses_and_metrics(client: Client) -> None:
    client.post("/api/chaos/errors/1", headers=AUTH)
    client.post("/api/chaos/enable", headers=AUTH)
    body = assert_problem(client.get("/api/items"), 500)
    assert "chaos" in body["detail"]
    assert client.get("/api/chaos", headers=AUTH).status_code == 200  # chaos never hits itself
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    text = metrics_text(client)
    assert "chaos_enabled 1.0" in text
    assert 'http_requests_total{method="GET",route="/api/items",status="500"} 1.0' in text
    client.post("/api/chaos/disable", headers=AUTH)
    assert client.get("/api/items").status_code == 200


def test_chaos_latency_visible_in_responses_and_metrics(client: Client) -> None:
    client.post("/api/chaos/latency/1000", headers=AUTH)
    client.post("/api/chaos/enable", headers=AUTH)
    started = time.monotonic()
    assert client.get("/api/items").status_code == 200
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    assert client.get("/health/live").status_code == 200
    assert time.monotonic() - started < 0.9  # no chaos latency (1 s) on health
    text = metrics_text(client)
    assert "chaos_latency_seconds 1.0" in text
    slow_bucket = re.search(
        r'http_request_duration_seconds_bucket\{le="0.75",method="GET",'
        r'route="/api/items"\} (\S+)',
        text,
    )
    total = re.search(
        r'http_request_duration_seconds_count\{method="GET",'
        r'route="/api/items"\} (\S+)',
        text,
    )
    assert slow_bucket
    assert total
    assert float(slow_bucket.group(1)) == 0
    assert float(total.group(1)) == 1


def test_metrics_never_carry_raw_ids(client: Client) -> None:
    item_id = client.post("/api/items", json={"name": "secret-id"}).json()["id"]
    for path in (
        f"/api/items/{item_id}",
        "/api/items/987654321",
        "/api/items/abc",
        "/nothing/12345",
        "/api/chaos/latency/4242",
    ):
        client.get(path)
    client.request("BREW", "/api/items/55555")
    labels = re.findall(r'route="([^"]*)"', metrics_text(client))
    assert set(labels) >= {"/api/items/{id}", "<unmatched>"}
    for label in labels:
        assert not re.search(r"\d{3,}", label), label
        assert label.startswith("/") or label == "<unmatched>"
    assert 'method="OTHER"' in metrics_text(client)


def test_pool_gauges_come_from_the_pool(client: Client) -> None:
    text = metrics_text(client)
    assert "db_pool_min 4.0" in text
    assert "db_pool_max 10.0" in text
    size = float(re.search(r"^db_pool_size (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert 4 <= size <= 10
