"""Lesson 07 exercise: choose chaos parameters that fire one alert and not the others.

The verifier runs the learner's experiment for real (faults on every replica, steady traffic),
waits for the target alert to fire and reads the state of the alerts that must stay silent from
Prometheus' `ALERTS` series; the faults are always removed afterwards. "Silent" means the pages
(severity critical): the ticket tier of AvailabilityBurnRate averages over 1 d / 3 d (24 / 72 min
at lab scale) and may still fire from the incident earlier in the lesson, which no choice of
parameters here can change.
"""

from __future__ import annotations

import time
from typing import Any

from lab import load, slo
from lab.errors import LabTimeoutError
from lab.exercises import Outcome, verifier
from lab.i18n import N_, _
from lab.waits import poll

TARGET = "HighLatency"
SILENT = ("HighErrorRate", "AvailabilityBurnRate")
PAGES = f'ALERTS{{alertname=~"{"|".join(SILENT)}",severity="critical"}}'
RATE = 30  # requests per second during the experiment
# The rate window fills, then `for:` runs; 15 s of margin for a busy machine.
FIRES_WITHIN_S = slo.LAB.seconds(slo.RATE_WINDOW_S + slo.FOR_S[TARGET]) + 15
MAX_LATENCY_MS = 2000


def _quiet(env: Any, timeout: float) -> None:
    """Wait until the target alert and the pages that must stay silent are neither pending nor
    firing (an earlier cell's may be)."""
    involved = f'ALERTS{{alertname="{TARGET}"}} or {PAGES}'
    poll(
        lambda: env.prom.query(involved).empty,
        what=_("{alert} and the availability pages to be inactive").format(alert=TARGET),
        timeout=timeout,
        interval=1.0,
        progress=False,
    )


@verifier(
    "07-latency-alert",
    hint=N_(
        "HighLatency compares the p95 of /api requests with 500 ms: the injected latency must "
        "put most requests above it. Every 5xx counts against availability: at 14.4x the "
        "budget (1.44 % errors) AvailabilityBurnRate pages, above 5 % HighErrorRate does."
    ),
)
def latency_alert(answer: Any, *, env: Any, timeout: float = 120.0, **_context: Any) -> Outcome:
    """`answer` = {"latency_ms": ..., "error_ratio": ...}: HighLatency must fire while
    HighErrorRate and AvailabilityBurnRate never go pending."""
    try:
        latency_ms, ratio = int(answer["latency_ms"]), float(answer["error_ratio"])
    except (TypeError, KeyError, ValueError):
        return Outcome(
            False,
            _("answer {answer!r}").format(answer=answer),
            _("Write {example}.").format(example='{"latency_ms": ..., "error_ratio": ...}'),
        )
    if not (0 <= latency_ms <= MAX_LATENCY_MS and 0 <= ratio <= 1):
        return Outcome(
            False,
            _("{latency_ms} ms, {ratio:g} errors").format(latency_ms=latency_ms, ratio=ratio),
            _("Latency 0-{max_ms} ms, error ratio 0-1.").format(max_ms=MAX_LATENCY_MS),
        )
    _quiet(env, timeout)
    started = time.monotonic()
    fired = True
    env.chaos.set_latency(ms=latency_ms)
    env.chaos.set_error_rate(ratio=ratio)
    env.chaos.enable()
    try:
        with load.background(
            env.endpoints.backends, rate=RATE, duration=FIRES_WITHIN_S, progress=False
        ):
            try:
                env.prom.wait_for_alert(TARGET, "firing", timeout=FIRES_WITHIN_S, progress=False)
            except LabTimeoutError:
                fired = False
    finally:
        env.chaos.reset()
    span = f"{int(time.monotonic() - started) + 1}s"
    noisy = env.prom.query(f"max_over_time({PAGES}[{span}])")
    woke = sorted(set(noisy["alertname"])) if not noisy.empty else []
    seen = (
        _("{latency_ms} ms and {ratio:.1%} errors: {alert} fired, also pending/firing: {woke}")
        if fired
        else _(
            "{latency_ms} ms and {ratio:.1%} errors: {alert} did not fire within {within} s, "
            "also pending/firing: {woke}"
        )
    ).format(
        latency_ms=latency_ms,
        ratio=ratio,
        alert=TARGET,
        within=FIRES_WITHIN_S,
        woke=", ".join(woke) if woke else _("none"),
    )
    return Outcome(fired and not woke, seen)
