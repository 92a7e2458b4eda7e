"""The load generator's program: open-loop, fixed-rate GETs from inside the namespace.

It runs in the load-generator Job's pod (`lab.loadgen`), as `python -c <this file + a call of
main()> ARGS` in the backend image (the call is appended there: `ironclad-lab` stays lab's only
entry point), so it uses the standard library only. Same rules as `lab.load`: request i is due
at t0 + i/rate whatever happened to earlier ones, its latency counts from that scheduled time,
and at most `--max-in-flight` requests are open at once. Every request opens its own connection
(`Connection: close`): kube-proxy picks a Service endpoint per connection, so each request is
routed on its own, as from a separate client.

It reports on stdout, one JSON object a line (the pod's log is the report `lab.service_load`
reads through the API):
- `{"event": "start", "url": ..., "rate": ..., "requests": ..., "timeout": ...}` first;
- one line per request: `{"i", "scheduled_s", "sent_s", "latency_s", "status", "error"}`
  (`error` is null, "late", "not-sent", "timeout", or "<exception type>: <message>");
- `{"event": "done", "due": N, "stopped": bool}` last: N requests were due when it ended.
SIGTERM (the Job deleted: `stop()`) schedules nothing more; requests in flight finish (or time
out) and the done line still comes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
from typing import Any
from urllib.parse import urlsplit

LATE = "late"  # past its timeout before it could be sent
NOT_SENT = "not-sent"  # max-in-flight requests were open when it was due
TIMEOUT = "timeout"  # no answer within the timeout, counted from the scheduled time


def report(line: dict[str, Any]) -> None:
    print(json.dumps(line, separators=(",", ":")), flush=True)


async def get(url: str) -> int:
    """One GET on a connection of its own; the answer's status code."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
            "User-Agent: ironclad-lab-loadgen\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.split()
        if len(fields) < 2 or not fields[1].isdigit():
            raise ConnectionResetError(f"no HTTP answer (got {status_line[:40]!r})")
        await reader.read()  # the body, up to the server's close
        return int(fields[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def request(args: argparse.Namespace, i: int, t0: float) -> None:
    """Send request `i` unless it is already past its timeout; report what happened."""
    loop = asyncio.get_running_loop()
    scheduled = i / args.rate
    now = loop.time() - t0
    row: dict[str, Any] = {"i": i, "scheduled_s": scheduled, "sent_s": None}
    row |= {"latency_s": None, "status": None, "error": None}
    budget = scheduled + args.timeout - now
    if budget <= 0:
        row["error"] = LATE
        report(row)
        return
    row["sent_s"] = now
    try:
        row["status"] = await asyncio.wait_for(get(args.url), budget)
    except TimeoutError:
        row["error"] = TIMEOUT
    except (OSError, ValueError) as exc:  # refused, reset, DNS (gaierror is an OSError)
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["latency_s"] = loop.time() - t0 - scheduled
    report(row)


async def drive(args: argparse.Namespace) -> int:
    """The schedule: start request i at t0 + i/rate until all are due or SIGTERM came."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    report(
        {
            "event": "start",
            "url": args.url,
            "rate": args.rate,
            "requests": args.requests,
            "timeout": args.timeout,
        }
    )
    in_flight: set[asyncio.Task[None]] = set()
    t0 = loop.time()
    i = 0
    while i < args.requests and not stop.is_set():
        due = min(args.requests, math.floor((loop.time() - t0) * args.rate) + 1)
        for j in range(i, due):
            if len(in_flight) >= args.max_in_flight:
                report({"i": j, "scheduled_s": j / args.rate, "sent_s": None, "latency_s": None,
                        "status": None, "error": NOT_SENT})  # fmt: skip
                continue
            task = loop.create_task(request(args, j, t0))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        i = max(i, due)
        if i < args.requests:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, t0 + i / args.rate - loop.time()))
    if in_flight:
        await asyncio.wait(set(in_flight))
    report({"event": "done", "due": i, "stopped": stop.is_set()})
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="full URL every request GETs")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--requests", type=int, required=True, help="how many to send")
    parser.add_argument("--timeout", type=float, default=10.0, help="s, from the schedule")
    parser.add_argument("--max-in-flight", type=int, default=1000)
    args = parser.parse_args(argv)
    if not args.rate > 0 or args.requests < 0 or not args.timeout > 0:
        parser.error("--rate and --timeout must be positive, --requests at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(drive(parse_args(sys.argv[1:] if argv is None else argv)))
