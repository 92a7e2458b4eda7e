"""The outer ASGI wrapper around a real (database-free) Litestar app, with a fresh registry."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, get, post
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient
from litestar.types import Message
from prometheus_client import CollectorRegistry

from backend.logs import flush_logs, json_handler, log_access, request_id_var
from backend.observe import (
    CLIENT_CLOSED_REQUEST,
    DURATION_BUCKETS,
    UNMATCHED_ROUTE,
    Metrics,
    ObservedApp,
    PoolCollector,
)
from lab.slo import LATENCY_THRESHOLD_S, SCALES, Scale
from lab.slo_rules import render


@get("/things/{thing_id:int}")
async def thing(thing_id: FromPath[int]) -> dict[str, int]:
    return {"id": thing_id}


@post("/things")
async def add_thing(data: JSONBody[dict[str, int]]) -> dict[str, int]:
    return data


def in_flight_route(path: str) -> HTTPRouteHandler:
    """A handler on `path` answering the in-flight gauge as seen while it runs."""

    @get(path)
    async def handler(registry: NamedDependency[CollectorRegistry]) -> dict[str, float | None]:
        return {"in_flight": registry.get_sample_value("http_requests_in_flight")}

    return handler


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def app(registry: CollectorRegistry) -> ObservedApp:
    routes = [thing, add_thing, in_flight_route("/health/live"), in_flight_route("/busy")]
    litestar = Litestar(
        routes,
        dependencies={"registry": Provide(lambda: registry, sync_to_thread=False)},
        logging_config=None,
    )
    return ObservedApp(litestar, Metrics(registry), read_timeout_s=0.2)


@pytest.fixture
def client(app: ObservedApp) -> Iterator[TestClient[ObservedApp]]:
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


def test_in_flight_leaves_out_probes_and_scrapes(client: TestClient[ObservedApp]) -> None:
    assert client.get("/busy").json() == {"in_flight": 1}
    assert client.get("/health/live").json() == {"in_flight": 0}


def format_line(record: logging.LogRecord) -> dict[str, object]:
    """`record` as the backend's stdout handler writes it, parsed back."""
    stream = io.StringIO()
    handler = json_handler(stream)
    handler.handle(record)
    handler.flush()
    text = stream.getvalue()
    assert text.count("\n") == 1
    return dict(json.loads(text))


@pytest.fixture
def stdout_lines() -> Iterator[io.StringIO]:
    """The root logger writes JSON lines to this stream (as configure_logging sets it up)."""
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_access_log_carries_request_fields(
    client: TestClient[ObservedApp], stdout_lines: io.StringIO
) -> None:
    client.get("/things/5", headers={"X-Request-ID": "log-me"})
    flush_logs()
    entries = [json.loads(line) for line in stdout_lines.getvalue().splitlines()]
    (line,) = [e for e in entries if e["logger"] == "backend.access"]
    assert line["msg"] == "request"
    assert line["level"] == "INFO"
    assert line["request_id"] == "log-me"
    assert line["route"] == "/things/{thing_id}"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", line["time"])


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    flush_logs()
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in entries if e["logger"] == "backend.access"]


def test_probe_and_scrape_lines_are_debug(
    client: TestClient[ObservedApp], stdout_lines: io.StringIO
) -> None:
    """At INFO (the default LOG_LEVEL) a probe or a scrape writes no access line; at DEBUG it
    does, marked DEBUG; business requests stay INFO."""
    client.get("/health/live")
    client.get("/metrics")  # unmatched in this app: still a scrape path
    client.get("/busy")
    assert [(e["route"], e["level"]) for e in access_lines(stdout_lines)] == [("/busy", "INFO")]
    logging.getLogger().setLevel(logging.DEBUG)
    client.get("/health/live")
    assert [(e["route"], e["level"]) for e in access_lines(stdout_lines)][1:] == [
        ("/health/live", "DEBUG")
    ]


def test_access_line_has_the_keys_of_any_other_line(stdout_lines: io.StringIO) -> None:
    """The hand-encoded access line and a formatter-made line differ only in their values."""
    token = request_id_var.set("rid-2")
    try:
        logging.getLogger("backend.access").info(
            "request", extra={"method": "GET", "route": "/r", "status": 200, "duration_ms": 1.0}
        )
        log_access("GET", "/r", 200, 0.001, "rid-2")
    finally:
        request_id_var.reset(token)
    flush_logs()
    formatted, direct = (json.loads(line) for line in stdout_lines.getvalue().splitlines())
    assert list(direct) == list(formatted)
    assert {k: v for k, v in direct.items() if k != "time"} == {
        k: v for k, v in formatted.items() if k != "time"
    }


def test_json_log_line_with_request_id_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        exc_info = (type(exc), exc, exc.__traceback__)
    record = logging.LogRecord(
        "backend", logging.ERROR, __file__, 1, "bad %s", ("thing",), exc_info
    )
    token = request_id_var.set("rid-1")
    try:
        entry = format_line(record)
    finally:
        request_id_var.reset(token)
    assert entry["msg"] == "bad thing"
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "backend"
    assert entry["request_id"] == "rid-1"
    assert str(entry["time"]).endswith("Z")
    assert "ValueError: boom" in str(entry["exc_info"])


def test_info_lines_are_held_until_a_flush_warnings_write_everything() -> None:
    stream = io.StringIO()
    handler = json_handler(stream)
    for level, msg in ((logging.INFO, "first"), (logging.INFO, "second")):
        handler.handle(logging.LogRecord("backend", level, __file__, 1, msg, (), None))
    assert stream.getvalue() == ""
    handler.handle(logging.LogRecord("backend", logging.WARNING, __file__, 1, "third", (), None))
    lines = [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]
    assert lines == ["first", "second", "third"]


def test_no_request_id_outside_a_request() -> None:
    record = logging.LogRecord("backend", logging.INFO, __file__, 1, "idle", (), None)
    assert "request_id" not in format_line(record)


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def drive(app: ObservedApp, body_events: list[Message]) -> list[Message]:
    """POST /things through `app` (its lifespan not needed), receiving `body_events` then
    waiting forever, as a server whose client stopped sending; returns what the app sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        if body_events:
            return body_events.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    asyncio.run(app(scope("POST", "/things", headers), receive, send))  # type: ignore[arg-type]
    return sent


def test_body_not_arriving_in_time_answers_408_and_closes(
    app: ObservedApp, registry: CollectorRegistry
) -> None:
    sent = drive(app, [{"type": "http.request", "body": b'{"a": ', "more_body": True}])
    start = sent[0]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert count(registry, "POST", "/things", "408") == 1


def test_client_gone_before_the_response_counts_as_499(
    app: ObservedApp, registry: CollectorRegistry
) -> None:
    drive(
        app,
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}],
    )
    assert count(registry, "POST", "/things", "499") == 1
    assert count(registry, "POST", "/things", "500") is None


def test_an_error_escaping_the_app_before_a_response_counts_as_500(
    registry: CollectorRegistry,
) -> None:
    """What the server answers (uvicorn sends 500) is what the metrics record; the request's
    id and in-flight count are undone on that path too."""
    seen_ids: list[str | None] = []

    async def failing(scope: object, receive: object, send: object) -> None:
        seen_ids.append(request_id_var.get())
        raise RuntimeError("broken before any response")

    app = ObservedApp(failing, Metrics(registry))  # type: ignore[arg-type]

    async def receive() -> Message:
        raise AssertionError("not read")

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    async def request_then_read_id() -> str | None:
        request = scope("GET", "/busy", [(b"x-request-id", b"rid-500")])
        with pytest.raises(RuntimeError, match="broken before any response"):
            await app(request, receive, send)  # type: ignore[arg-type]
        return request_id_var.get()  # in the same context as the request ran

    assert asyncio.run(request_then_read_id()) is None
    assert seen_ids == ["rid-500"]
    assert count(registry, "GET", UNMATCHED_ROUTE, "500") == 1
    assert registry.get_sample_value("http_requests_in_flight") == 0


def test_buckets_bracket_the_latency_slo_threshold() -> None:
    """0.5 s is a boundary, with neighbours within -20 % and +20 % (lab/slo.py owns 0.5)."""
    assert LATENCY_THRESHOLD_S in DURATION_BUCKETS
    below = max(b for b in DURATION_BUCKETS if b < LATENCY_THRESHOLD_S)
    above = min(b for b in DURATION_BUCKETS if b > LATENCY_THRESHOLD_S)
    assert below >= 0.8 * LATENCY_THRESHOLD_S
    assert above <= 1.2 * LATENCY_THRESHOLD_S
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)


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
        http.observe("GET", "/r", 200, seconds)

    def bucket(le: str) -> float | None:
        return registry.get_sample_value(
            "http_request_duration_seconds_bucket", {"method": "GET", "route": "/r", "le": le}
        )

    assert [bucket("0.25"), bucket("0.45"), bucket("0.5"), bucket("10.0"), bucket("+Inf")] == [
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


def test_histogram_sums_every_status_of_a_route(registry: CollectorRegistry) -> None:
    http = Metrics(registry).http
    for seconds, status in ((0.5, 200), (0.3, 404), (7.0, 500), (0.2, 200)):
        http.observe("GET", "/r", status, seconds)
    assert [count(registry, "GET", "/r", s) for s in ("200", "404", "500")] == [2, 1, 1]
    labels = {"method": "GET", "route": "/r"}
    assert registry.get_sample_value("http_request_duration_seconds_count", labels) == 4
    assert (
        registry.get_sample_value("http_request_duration_seconds_bucket", {**labels, "le": "0.45"})
        == 2
    )


@pytest.mark.parametrize("scale", SCALES, ids=lambda scale: scale.name)
def test_client_closed_requests_are_outside_the_availability_sli(scale: Scale) -> None:
    """The SLI's bad events are `status=~"5.."` (anchored): 499 is not one, 500 and 503 are."""
    matchers = re.findall(r'status=~"([^"]*)"', render(scale))
    assert matchers
    for regex in matchers:
        assert not re.fullmatch(regex, str(CLIENT_CLOSED_REQUEST))
        assert re.fullmatch(regex, "500")
        assert re.fullmatch(regex, "503")
