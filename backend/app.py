"""The application factory: Litestar app, wrapped in the metrics/logging ASGI layer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from backend import routes
from backend.chaos import Chaos, ChaosController, inject_chaos
from backend.db import Database, DatabaseUnavailableError
from backend.observe import Metrics, ObservedApp, PoolCollector
from backend.problems import EXCEPTION_HANDLERS
from backend.routes import Lifecycle
from backend.settings import Settings

log = logging.getLogger("backend")


def _provide(value: object) -> Provide:
    def dependency() -> Any:
        return value

    return Provide(dependency, use_cache=True, sync_to_thread=False)


class Backend(ObservedApp):
    """What `create_app` returns: the Litestar app inside the outer metrics/logging wrapper."""

    def __init__(
        self,
        litestar: Litestar,
        metrics: Metrics,
        lifecycle: Lifecycle,
        database: Database,
        read_timeout_s: float,
    ) -> None:
        super().__init__(litestar, metrics, read_timeout_s)
        self.litestar = litestar
        self.lifecycle = lifecycle
        self.database = database

    def start_draining(self) -> None:
        """Make readiness answer 503 from now on (called on SIGTERM)."""
        self.lifecycle.draining = True
        log.info("draining: readiness now answers 503")


async def open_database(db: Database) -> None:
    """Wait for PostgreSQL and create the schema (`Database.open`), the outcome logged; nothing
    when already done. The lifespan calls it; `python -m backend` calls it before serving, where
    a stop signal can cut the wait short (backend.server.BackendServer.serve)."""
    if db.opened:
        return
    try:
        await db.open()
    except DatabaseUnavailableError as exc:
        log.error("start-up failed: %s", exc)  # one readable line (a lifespan adds a traceback)
        raise
    log.info("database ready at %s", db.target)


def default_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors (`process_cpu_seconds_total`
    is the CPU the dashboard's saturation panel compares with the pod's request)."""
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    return registry


def create_app(
    settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> Backend:
    """Build the backend; settings default to the environment.

    Metrics go to `registry`; without one, a fresh registry that also carries the process,
    platform and GC collectors (an injected registry gets only the app's own metrics).
    """
    settings = settings or Settings.from_env()
    if registry is None:
        registry = default_registry()
    metrics = Metrics(registry)
    db = Database(settings, on_breaker_change=metrics.breaker_open.set)
    registry.register(PoolCollector(db.pool.get_stats))
    chaos = Chaos(settings.chaos_token, metrics)
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await open_database(db)
        try:
            yield
        finally:
            await db.close()
            log.info("connection pool closed")

    business = Router(
        "/",
        route_handlers=[
            routes.items_options,  # before the handlers they describe (see routes.options)
            routes.item_options,
            routes.create_item,
            routes.list_items,
            routes.get_item,
            routes.delete_item,
            routes.work,
        ],
        before_request=inject_chaos,
    )
    dependencies: dict[str, Callable[..., Any] | Provide] = {
        "db": _provide(db),
        "chaos": _provide(chaos),
        "lifecycle": _provide(lifecycle),
        "registry": _provide(registry),
    }
    litestar = Litestar(
        route_handlers=[routes.live, routes.ready, routes.metrics, business, ChaosController],
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=None,
        logging_config=None,
        openapi_config=OpenAPIConfig(title="Ironclad backend", version="1.0.0"),
    )
    litestar.state.chaos = chaos
    return Backend(litestar, metrics, lifecycle, db, settings.read_timeout_s)
