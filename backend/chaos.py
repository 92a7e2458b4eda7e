"""Chaos controls: latency and error injection on business routes, behind a bearer token."""

from __future__ import annotations

import asyncio
import hmac
import math
import random
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import (
    ClientException,
    InternalServerException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath

from backend.observe import Metrics

MAX_LATENCY_MS = 10_000


class ChaosStatus(msgspec.Struct):
    """What GET /api/chaos and every chaos change answer."""

    enabled: bool
    latency_ms: int
    error_ratio: float


class Chaos:
    """Fault settings; they take effect only while `enabled` (setting them does not enable)."""

    def __init__(
        self, token: str | None, metrics: Metrics, rng: random.Random | None = None
    ) -> None:
        self.token = token
        self._metrics = metrics
        self._rng = rng or random.Random()
        self.status = ChaosStatus(enabled=False, latency_ms=0, error_ratio=0.0)

    def update(
        self,
        *,
        enabled: bool | None = None,
        latency_ms: int | None = None,
        error_ratio: float | None = None,
    ) -> ChaosStatus:
        """Change the given fields, mirror them in the chaos_* gauges, return the new status."""
        s = self.status
        self.status = ChaosStatus(
            enabled=s.enabled if enabled is None else enabled,
            latency_ms=s.latency_ms if latency_ms is None else latency_ms,
            error_ratio=s.error_ratio if error_ratio is None else error_ratio,
        )
        self._metrics.chaos_enabled.set(int(self.status.enabled))
        self._metrics.chaos_latency.set(self.status.latency_ms / 1000)
        self._metrics.chaos_error_ratio.set(self.status.error_ratio)
        return self.status

    async def inject(self) -> None:
        """Add the configured latency, then fail with the configured ratio (only when enabled)."""
        s = self.status
        if not s.enabled:
            return
        if s.latency_ms:
            await asyncio.sleep(s.latency_ms / 1000)
        if s.error_ratio and self._rng.random() < s.error_ratio:
            raise InternalServerException(
                f"Fault injected by chaos (error ratio {s.error_ratio:g})."
            )


async def inject_chaos(request: Request[Any, Any, Any]) -> None:
    """before_request hook of the business routes."""
    chaos: Chaos = request.app.state.chaos
    await chaos.inject()


def require_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 403 when chaos is unconfigured or the token is wrong, 401 when none is sent."""
    chaos: Chaos = connection.app.state.chaos
    if chaos.token is None:
        raise PermissionDeniedException(
            "Chaos is disabled on this backend: CHAOS_TOKEN is not set. Set it to enable the "
            "chaos endpoints."
        )
    scheme, _sep, sent = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not sent:
        raise NotAuthorizedException(
            "Send the chaos token as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": 'Bearer realm="chaos"'},
        )
    if not hmac.compare_digest(sent.strip().encode(), chaos.token.encode()):
        raise PermissionDeniedException("Wrong chaos token.")


class UnprocessableError(ClientException):
    """A chaos parameter out of its bounds (422)."""

    status_code = 422


class ChaosController(Controller):
    """GET /api/chaos and the POST endpoints that change it (bearer token required)."""

    path = "/api/chaos"
    guards = [require_token]  # noqa: RUF012 - Litestar's declared class attribute
    tags = ["chaos"]  # noqa: RUF012

    @get()
    async def status(self, chaos: NamedDependency[Chaos]) -> ChaosStatus:
        return chaos.status

    @post("/enable", status_code=200)
    async def enable(self, chaos: NamedDependency[Chaos]) -> ChaosStatus:
        return chaos.update(enabled=True)

    @post("/disable", status_code=200)
    async def disable(self, chaos: NamedDependency[Chaos]) -> ChaosStatus:
        return chaos.update(enabled=False)

    @post("/latency/{ms:str}", status_code=200)
    async def latency(self, chaos: NamedDependency[Chaos], ms: FromPath[str]) -> ChaosStatus:
        """Set the added latency (integer ms, 0-10000); does not enable chaos."""
        if not (ms.isascii() and ms.isdigit() and int(ms) <= MAX_LATENCY_MS):
            raise UnprocessableError(
                f"ms must be an integer from 0 to {MAX_LATENCY_MS}, got {ms!r}."
            )
        return chaos.update(latency_ms=int(ms))

    @post("/errors/{rate:str}", status_code=200)
    async def errors(self, chaos: NamedDependency[Chaos], rate: FromPath[str]) -> ChaosStatus:
        """Set the share of failed requests (a ratio, 0-1); does not enable chaos."""
        try:
            ratio = float(rate)
        except ValueError:
            ratio = math.nan
        if not (math.isfinite(ratio) and 0 <= ratio <= 1):
            raise UnprocessableError(f"rate must be a ratio from 0 to 1, got {rate!r}.")
        return chaos.update(error_ratio=ratio)
