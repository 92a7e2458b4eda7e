"""Prometheus metrics and the outer ASGI wrapper that records them, logs and tags requests."""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
import secrets
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from time import perf_counter
from typing import cast

from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.status_codes import HTTP_408_REQUEST_TIMEOUT
from litestar.types import (
    ASGIApp,
    HTTPScope,
    LifeSpanScope,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from backend.logs import access_log, log_access, request_id_var

UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Buckets around the 0.5 s latency SLO (lab/slo.py's LATENCY_THRESHOLD_S; the backend does not
# import lab, tests/unit/backend/test_observe.py checks the two agree): 0.5 itself is a boundary,
# with neighbours within -20 % and +20 % so a p95 near the threshold is read close to it.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.45, 0.5, 0.6, 0.75, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
# Probes and scrapes are not load: http_requests_in_flight leaves them out, and their access
# lines are DEBUG (every replica is probed and scraped every few seconds: at INFO they would
# drown the requests a learner reads the log for).
NOT_IN_FLIGHT = frozenset({"/health/live", "/health/ready", "/metrics"})
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before its response
# pool.get_stats() key → help text of the db_pool_<key> gauge.
POOL_GAUGES = {
    "pool_min": "Minimum number of connections the pool keeps.",
    "pool_max": "Maximum number of connections the pool may open.",
    "pool_size": "Connections currently managed by the pool (in use, idle or being prepared).",
    "pool_available": "Idle connections ready to be used.",
    "requests_waiting": "Requests waiting for a connection.",
}
MAX_REQUEST_ID = 200


class PoolCollector(Collector):
    """Exports `db_pool_*` gauges read from `stats()` (psycopg_pool's get_stats) at scrape time."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily]:
        stats = self._stats()
        for key, help_text in POOL_GAUGES.items():
            name = "db_pool_" + key.removeprefix("pool_")
            yield GaugeMetricFamily(name, help_text, value=stats.get(key, 0))


class HttpCollector(Collector):
    """HTTP request metrics, kept in plain dicts and exported at scrape time.

    `http_requests_total`, `http_request_duration_seconds` and `http_requests_in_flight` are
    updated on the event loop thread only (by ObservedApp), so no locks are needed; this keeps
    the per-request cost to a few dict operations (see bench/README.md, "Backend").
    """

    def __init__(self, buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.in_flight = 0
        # (method, route, status) → request counts per bucket (the last one is +Inf), then the
        # sum of seconds: one dict lookup per request; the counter and the histogram (which
        # has no status label) are summed from these at scrape time.
        self._series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = [0] * (len(self.buckets) + 1) + [0.0]
        series[bisect_left(self.buckets, seconds)] += 1
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests",
            "HTTP requests by route and status.",
            labels=["method", "route", "status"],
        )
        by_route: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), series in list(self._series.items()):
            requests.add_metric([method, route, str(status)], sum(series[:-1]))
            total = by_route.setdefault((method, route), [0] * len(series))
            total[:] = map(operator.add, total, series)
        durations = HistogramMetricFamily(
            "http_request_duration_seconds", "HTTP request duration.", labels=["method", "route"]
        )
        bounds = [*map(repr, self.buckets), "+Inf"]
        for (method, route), histogram in by_route.items():
            cumulative = list(itertools.accumulate(histogram[:-1]))
            durations.add_metric(
                [method, route], list(zip(bounds, cumulative, strict=True)), sum_value=histogram[-1]
            )
        yield requests
        yield durations
        yield GaugeMetricFamily(
            "http_requests_in_flight",
            "HTTP requests being served, excluding /health/* and /metrics (probes, scrapes).",
            value=self.in_flight,
        )


class Metrics:
    """Every application metric, registered in one (injectable) registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http = HttpCollector()
        registry.register(self.http)
        self.chaos_enabled = Gauge(
            "chaos_enabled", "1 while chaos faults are injected.", registry=registry
        )
        self.chaos_latency = Gauge(
            "chaos_latency_seconds", "Latency added while chaos is on.", registry=registry
        )
        self.chaos_error_ratio = Gauge(
            "chaos_error_ratio", "Share of requests failed while chaos is on.", registry=registry
        )
        self.breaker_open = Gauge(
            "circuit_breaker_open",
            "1 while the database circuit breaker is open or half-open.",
            registry=registry,
        )


# Generated request ids: a random per-process prefix and a counter (unique, and cheap), 16 hex
# digits each; the counter starts at 16**15 so that `hex()` (faster than a padded format) gives
# 16 digits too.
_id_prefix = secrets.token_hex(8)
_id_counter = itertools.count(1 << 60)


def _request_id(scope: HTTPScope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            if 0 < len(text) <= MAX_REQUEST_ID and text.isprintable():
                return text
    return _id_prefix + hex(next(_id_counter))[2:]


class _Exchange:
    """One request's view of the server: its receive (body-bounded) and send (tagging) calls."""

    __slots__ = (
        "_receive", "_send", "_timeout_s", "body_deadline", "request_id", "started", "status"
    )  # fmt: skip

    def __init__(self, receive: Receive, send: Send, request_id: str, timeout_s: float) -> None:
        self.status = 500  # what the client sees if the app fails before starting a response
        self.started = False
        self.body_deadline: float | None = None
        self.request_id = request_id
        self._receive = receive
        self._send = send
        self._timeout_s = timeout_s

    async def receive(self) -> ReceiveMessage:
        if self.body_deadline is None:  # from the app's first read (chaos may delay it)
            self.body_deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            async with asyncio.timeout_at(self.body_deadline):
                message = await self._receive()
        except TimeoutError:
            raise ClientException(
                f"The request body did not arrive within {self._timeout_s:g} s.",
                status_code=HTTP_408_REQUEST_TIMEOUT,
                headers={"Connection": "close"},
            ) from None
        if message["type"] == "http.disconnect" and not self.started:
            self.status = CLIENT_CLOSED_REQUEST
        return message

    def send(self, message: Message) -> Awaitable[None]:
        # Not a coroutine itself: it hands back the server's `send(...)` for the app to
        # await, a coroutine less per message.
        if message["type"] == "http.response.start":
            self.started = True
            if self.status != CLIENT_CLOSED_REQUEST:
                self.status = message["status"]
            message["headers"] = [
                *message.get("headers", ()),
                (b"x-request-id", self.request_id.encode("latin-1")),
            ]
        return self._send(message)


class ObservedApp:
    """Outer ASGI wrapper: metrics, access log and X-Request-ID for every HTTP request.

    It sits outside Litestar so that 404/405 and chaos-injected errors are counted too.
    The route label is the template Litestar matched (scope["path_template"]), never the raw path.
    It also bounds the request body: a body not received within `read_timeout_s` of the app's
    first read answers 408 and closes the connection. A client that disconnects before
    its response started is recorded as 499 (nginx's "client closed request"), not as the 500
    the app answers into the void.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, read_timeout_s: float = 5.0) -> None:
        self.app = app
        self.metrics = metrics
        self.read_timeout_s = read_timeout_s

    async def __call__(
        self, any_scope: Scope | LifeSpanScope, receive: Receive, send: Send
    ) -> None:
        if any_scope["type"] != ScopeType.HTTP:  # lifespan (websocket is unused)
            await self.app(any_scope, receive, send)  # type: ignore[arg-type]
            return
        scope = cast(HTTPScope, any_scope)
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        exchange = _Exchange(receive, send, request_id, self.read_timeout_s)
        http = self.metrics.http
        in_flight = scope["path"] not in NOT_IN_FLIGHT
        if in_flight:
            http.in_flight += 1
        start = perf_counter()
        try:
            await self.app(scope, exchange.receive, exchange.send)
        finally:
            elapsed = perf_counter() - start
            if in_flight:
                http.in_flight -= 1
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            route = scope.get("path_template") or UNMATCHED_ROUTE
            http.observe(method, route, exchange.status, elapsed)
            level = logging.INFO if in_flight else logging.DEBUG
            if access_log.isEnabledFor(level):
                log_access(method, route, exchange.status, elapsed, request_id, level)
            request_id_var.reset(token)
