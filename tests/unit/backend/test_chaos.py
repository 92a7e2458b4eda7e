"""Chaos state: faults only while enabled, gauges mirror the state."""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest
from litestar.exceptions import InternalServerException
from prometheus_client import CollectorRegistry

from backend.chaos import MIB, Chaos
from backend.observe import Metrics


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def chaos(registry: CollectorRegistry) -> Chaos:
    return Chaos("token", Metrics(registry), random.Random(7))


def failures(chaos: Chaos, n: int) -> int:
    async def run() -> int:
        failed = 0
        for _ in range(n):
            try:
                await chaos.inject()
            except InternalServerException:
                failed += 1
        return failed

    return asyncio.run(run())


def test_setting_values_does_not_enable(chaos: Chaos, registry: CollectorRegistry) -> None:
    chaos.update(error_ratio=1.0, latency_ms=10_000)
    started = time.monotonic()
    assert failures(chaos, 20) == 0
    assert time.monotonic() - started < 5  # twenty 10 s latencies were not applied
    assert registry.get_sample_value("chaos_enabled") == 0
    assert registry.get_sample_value("chaos_latency_seconds") == 10
    assert registry.get_sample_value("chaos_error_ratio") == 1.0


def test_error_ratio_applies_while_enabled(chaos: Chaos, registry: CollectorRegistry) -> None:
    chaos.update(enabled=True, error_ratio=1.0)
    assert failures(chaos, 10) == 10
    chaos.update(error_ratio=0.5)
    assert 300 < failures(chaos, 1000) < 700
    chaos.update(error_ratio=0.0)
    assert failures(chaos, 50) == 0
    assert registry.get_sample_value("chaos_enabled") == 1


def test_latency_applies_while_enabled(chaos: Chaos) -> None:
    chaos.update(enabled=True, latency_ms=100)
    started = time.monotonic()
    failures(chaos, 2)
    assert time.monotonic() - started >= 0.2


def test_update_keeps_untouched_fields(chaos: Chaos) -> None:
    chaos.update(latency_ms=250)
    status = chaos.update(enabled=True)
    assert (status.enabled, status.latency_ms, status.error_ratio) == (True, 250, 0.0)


def test_disable_during_the_delay_lets_delayed_requests_succeed(chaos: Chaos) -> None:
    """Faults read the state after the delay: disabling chaos rescues requests in flight."""
    chaos.update(enabled=True, latency_ms=200, error_ratio=1.0)

    async def run() -> list[BaseException | None]:
        delayed = [asyncio.create_task(chaos.inject()) for _ in range(20)]
        await asyncio.sleep(0.05)  # every request is now sleeping the 200 ms
        chaos.update(enabled=False)
        return await asyncio.gather(*delayed, return_exceptions=True)

    assert asyncio.run(run()) == [None] * 20


def resident_mib() -> float:
    """This process's resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def test_memory_hog_holds_resident_memory_until_released(chaos: Chaos) -> None:
    """The pages are written, not only reserved: a container limit counts them."""
    before = resident_mib()
    assert chaos.hold_memory(64).held_mb == 64
    assert resident_mib() - before >= 60
    assert chaos.hold_memory(0).held_mb == 0
    assert resident_mib() - before < 16
