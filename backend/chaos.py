"""Chaos controls: latency and error injection on business routes, and a memory hog.

Everything sits behind a bearer token.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import math
import mmap
import os
import random
import threading
from typing import Annotated, Any

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
from litestar.params import PathParameter

from backend.observe import Metrics
from backend.problems import problem_responses

MAX_LATENCY_MS = 10_000
MAX_MEMORY_MB = 1024
MIB = 1 << 20
# The hog's pages are written by the kernel: one read(2) from this device into the mapping,
# during which Python releases the GIL, so the event loop keeps answering (a 1 GiB write by
# Python held the GIL for the whole allocation, 5.4 s, issue 20 item 7; chunks written by
# Python took the GIL turn about with the loop and made a 1 GiB hog take 15 s).
ZERO_DEVICE = "/dev/zero"
# Address space a process holding a hog must still have free to serve normally (heap and
# allocator growth under load; the worker threads' stacks are already mapped, see
# backend.server.start_worker_threads). A hog that would leave less ends the process like
# an OOM kill, instead of leaving it up and failing requests (issue 20 item 6).
SERVING_RESERVE = 32 * MIB
# Exit code after a memory hog hit the process's own memory limit (RLIMIT_AS): the process
# analog of a container's OOM kill, which Kubernetes reports as exit code 137 (128 + SIGKILL).
EXIT_OUT_OF_MEMORY = 137
log = logging.getLogger("backend.chaos")
# Error responses the chaos endpoints document; the 400 replaces the plain-JSON one Litestar
# adds to parameterized routes.
AUTH_ERRORS = problem_responses(401, 403)
PARAM_ERRORS = problem_responses(400, 401, 403, 422)


class ChaosStatus(msgspec.Struct):
    """What GET /api/chaos and every chaos change answer."""

    enabled: bool
    latency_ms: int
    error_ratio: float


class MemoryHeld(msgspec.Struct):
    """What POST /api/chaos/memory/{mb} answers: the MiB the hog now holds."""

    held_mb: int


class Chaos:
    """Fault settings; they take effect only while `enabled` (setting them does not enable)."""

    def __init__(
        self, token: str | None, metrics: Metrics, rng: random.Random | None = None
    ) -> None:
        self.token = token
        self._metrics = metrics
        self._rng = rng or random.Random()
        self.status = ChaosStatus(enabled=False, latency_ms=0, error_ratio=0.0)
        self._hog: mmap.mmap | None = None
        self._hog_lock = threading.Lock()  # one hog at a time, also from two worker threads

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
        """Add the configured latency, then fail with the configured ratio (only when enabled).

        The ratio is read after the delay, so a request delayed before `disable` succeeds.
        """
        s = self.status
        if not s.enabled:
            return
        if s.latency_ms:
            await asyncio.sleep(s.latency_ms / 1000)
            s = self.status
            if not s.enabled:
                return
        if s.error_ratio and self._rng.random() < s.error_ratio:
            raise InternalServerException(
                f"Fault injected by chaos (error ratio {s.error_ratio:g})."
            )

    def hold_memory(self, mb: int) -> MemoryHeld:
        """Free what the hog holds, then map `mb` MiB, write every page (so it is resident)
        and keep it; 0 only frees. Acts at once (not a fault gated by `enabled`).

        Called in a worker thread; the pages are written without the GIL (see ZERO_DEVICE),
        so the event loop keeps serving meanwhile. Under a container memory limit the kernel
        OOM-kills the process. Under RLIMIT_AS the mapping fails instead, or leaves less than
        SERVING_RESERVE of address space: the process then logs it and exits at once with
        EXIT_OUT_OF_MEMORY, as abruptly as an OOM kill, for its supervisor to restart it
        (the process analog, not a real OOM kill). Either the hog is held and the process
        serves normally, or it dies.
        """
        with self._hog_lock:
            if self._hog is not None:
                self._hog.close()
                self._hog = None
            if mb:
                self._hog = allocate(mb)
        return MemoryHeld(held_mb=mb)


def allocate(mb: int) -> mmap.mmap:
    """`mb` MiB of anonymous memory with every page written (by the kernel); exit with
    EXIT_OUT_OF_MEMORY when it, plus SERVING_RESERVE beside it, exceeds the address-space
    limit (RLIMIT_AS counts a mapping when it is made, so this fails before any write)."""
    try:
        hog = mmap.mmap(-1, mb * MIB)
        mmap.mmap(-1, SERVING_RESERVE).close()
    except OSError as exc:
        if exc.errno != errno.ENOMEM:
            raise
        log.critical(
            "memory hog: %d MiB exceed this process's memory limit; exiting with code %d (the "
            "process analog of an OOM kill; %d MiB beside the hog must stay free to serve)",
            mb,
            EXIT_OUT_OF_MEMORY,
            SERVING_RESERVE // MIB,
        )
        os._exit(EXIT_OUT_OF_MEMORY)
    with open(ZERO_DEVICE, "rb", buffering=0) as zero, memoryview(hog) as pages:
        written = 0
        while written < len(pages):  # a signal may cut a read short
            written += zero.readinto(pages[written:])
    return hog


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


def bounded_int(name: str, raw: str, high: int) -> int:
    """`raw` as an integer from 0 to `high` (ASCII digits only), else 422."""
    if not (raw.isascii() and raw.isdigit() and int(raw) <= high):
        raise UnprocessableError(f"{name} must be an integer from 0 to {high}, got {raw!r}.")
    return int(raw)


def documented_as(description: str, **schema: Any) -> Any:
    """A path parameter the handler reads as text (to refuse what `int()`/`float()` would
    take but the API does not: `+1`, `1_0`, digits of other scripts) and the document
    describes as the bounded number it must be."""
    return PathParameter(description=description, schema_extra=schema)


LatencyMs = Annotated[
    str,
    documented_as("Added latency in ms.", type="integer", minimum=0, maximum=MAX_LATENCY_MS),
]
MemoryMb = Annotated[
    str,
    documented_as("MiB to hold (0 frees).", type="integer", minimum=0, maximum=MAX_MEMORY_MB),
]
ErrorRate = Annotated[
    str, documented_as("Share of requests to fail.", type="number", minimum=0, maximum=1)
]


class ChaosController(Controller):
    """GET /api/chaos and the POST endpoints that change it (bearer token required)."""

    path = "/api/chaos"
    guards = [require_token]  # noqa: RUF012 - Litestar's declared class attribute
    tags = ["chaos"]  # noqa: RUF012

    @get(responses=AUTH_ERRORS)
    async def status(self, chaos: NamedDependency[Chaos]) -> ChaosStatus:
        return chaos.status

    @post("/enable", status_code=200, responses=AUTH_ERRORS)
    async def enable(self, chaos: NamedDependency[Chaos]) -> ChaosStatus:
        return chaos.update(enabled=True)

    @post("/disable", status_code=200, responses=AUTH_ERRORS)
    async def disable(self, chaos: NamedDependency[Chaos]) -> ChaosStatus:
        return chaos.update(enabled=False)

    @post("/latency/{ms:str}", status_code=200, responses=PARAM_ERRORS)
    async def latency(self, chaos: NamedDependency[Chaos], ms: LatencyMs) -> ChaosStatus:
        """Set the added latency (integer ms, 0-10000); does not enable chaos."""
        return chaos.update(latency_ms=bounded_int("ms", ms, MAX_LATENCY_MS))

    @post("/memory/{mb:str}", status_code=200, sync_to_thread=True, responses=PARAM_ERRORS)
    def memory(self, chaos: NamedDependency[Chaos], mb: MemoryMb) -> MemoryHeld:
        """Hold `mb` MiB of resident memory (0-1024; 0 frees it); acts at once.

        A memory limit below it kills the process (OOM kill in a container; exit code 137
        under RLIMIT_AS).
        """
        return chaos.hold_memory(bounded_int("mb", mb, MAX_MEMORY_MB))

    @post("/errors/{rate:str}", status_code=200, responses=PARAM_ERRORS)
    async def errors(self, chaos: NamedDependency[Chaos], rate: ErrorRate) -> ChaosStatus:
        """Set the share of failed requests (a ratio, 0-1); does not enable chaos."""
        try:
            ratio = float(rate) if rate.isascii() else math.nan
        except ValueError:
            ratio = math.nan
        if not (math.isfinite(ratio) and 0 <= ratio <= 1):
            raise UnprocessableError(f"rate must be a ratio from 0 to 1, got {rate!r}.")
        return chaos.update(error_ratio=ratio)
