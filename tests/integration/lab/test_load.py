"""The load generator against a small real HTTP server in its own process.

The server counts what it received and can be slow, serial or failing on demand, so the
generator's rate, its latency accounting (no coordinated omission) and its error bookkeeping
can be checked from the server's side too. The backend itself is loaded in test_load_backend.py.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest
import requests

from lab import load
from lab.net import free_port, port_is_open
from lab.procs import ManagedProcess, wait_until
from lab.progress import HEADLESS_ENV

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

SERVER = """
import asyncio, sys
from aiohttp import web

received = 0

async def count(request):
    global received
    received += 1
    return await request.app["handlers"][request.match_info["kind"]](request)

async def fast(request):
    return web.Response(text="ok")

async def slow(request):
    await asyncio.sleep(int(request.query["ms"]) / 1000)
    return web.Response(text="ok")

async def fail(request):
    return web.Response(status=500)

async def received_count(request):
    return web.json_response(received)

app = web.Application()
app["handlers"] = {"fast": fast, "slow": slow, "fail": fail}
app.router.add_get("/received", received_count)
app.router.add_get("/{kind}", count)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the test server (one per module)."""
    root = tmp_path_factory.mktemp("load-server")
    (root / "server.py").write_text(SERVER)
    port = free_port()
    proc = ManagedProcess(
        "load test server",
        [sys.executable, str(root / "server.py"), str(port)],
        root / "server.log",
    ).start()
    try:
        wait_until(lambda: port_is_open(port), timeout=20, what="the load test server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def received(server: str) -> int:
    return int(requests.get(f"{server}/received", timeout=5).json())


@pytest.mark.slow
def test_rate_is_held_and_every_request_reaches_the_server(server: str) -> None:
    before = received(server)
    result = load.run(server, rate=200, duration=5, path="/fast", progress=False)
    summary = result.summary()
    assert summary["requests"] == 1000
    assert received(server) - before == 1000
    assert summary["achieved_rate"] == pytest.approx(200, rel=0.05)
    assert summary["throughput"] == pytest.approx(200, rel=0.05)
    assert summary["error_ratio"] == 0
    df = result.df
    assert (df["sent_s"] >= df["scheduled_s"]).all()
    assert (df["latency_s"] >= df["sent_s"] - df["scheduled_s"]).all()


def test_closed_loop_sends_every_request_with_that_many_in_flight(server: str) -> None:
    # 3 connections, 50 ms per request: 30 requests in 10 rounds. Each connection waits for its
    # answer, so latency is the server's time (no queue in the client) and all 30 arrive.
    before = received(server)
    result = load.run(
        [server, server + "/"], requests=30, concurrency=3, path="/slow?ms=50", progress=False
    )
    df = result.df
    assert len(df) == 30
    assert received(server) - before == 30
    assert df["error"].isna().all()
    assert (df["status"] == 200).all()
    assert (df["sent_s"] - df["scheduled_s"]).between(0, 0.5).all()  # due when a connection is free
    assert df["latency_s"].between(0.05, 5).all()
    # never more than 3 in flight: request i + 3 leaves only after one of the first i + 1 ended
    sent, done = df["sent_s"].to_numpy(), (df["sent_s"] + df["latency_s"]).to_numpy()
    assert all(sent[i + 3] >= min(done[: i + 1]) for i in range(27))
    summary = result.summary()
    assert math.isnan(summary["target_rate"])
    assert summary["requests"] == 30
    assert summary["error_ratio"] == 0


def test_closed_loop_counts_every_failure(server: str) -> None:
    result = load.run(server, requests=7, concurrency=2, path="/fail", progress=False)
    assert result.df["status"].tolist() == [500] * 7
    assert result.summary()["error_ratio"] == 1


def test_latency_includes_time_queued_in_the_client(server: str) -> None:
    # One connection, 20 ms per request, 100 requests due in 1 s: the server can only do 50/s,
    # so request i waits for the i before it. Measured from the scheduled time, the last
    # latency is ~2 s - 1 s; a closed-loop tool would report ~20 ms for every request.
    result = load.run(
        server, rate=100, requests=100, path="/slow?ms=20", connections=1, progress=False
    )
    df = result.df
    assert df["status"].eq(200).all()
    assert (df["sent_s"] - df["scheduled_s"]).median() < 0.2  # dispatched on time, not queued
    assert df["latency_s"].iloc[-1] > 0.8
    assert df["latency_s"].min() >= 0.02
    assert result.summary()["p99"] > 0.8


def test_requests_over_the_in_flight_cap_count_as_errors(server: str) -> None:
    before = received(server)
    result = load.run(
        server, rate=100, requests=50, path="/slow?ms=1000", max_in_flight=5, progress=False
    )
    df = result.df
    not_sent = df["error"].eq(load.NOT_SENT)
    answered = df["status"].eq(200)
    assert answered.sum() >= 5
    assert not_sent.sum() >= 40
    assert (not_sent | answered).all()
    assert received(server) - before == answered.sum()
    assert result.summary()["error_ratio"] == pytest.approx(not_sent.mean())


def test_the_timeout_counts_from_the_scheduled_time_so_the_run_is_bounded(server: str) -> None:
    # as in the queueing test, request i would be answered ~i * 10 ms late; with a 0.3 s
    # timeout from the schedule, the late ones fail as timeouts instead of stretching the run
    started = time.monotonic()
    result = load.run(
        server,
        rate=100,
        requests=100,
        path="/slow?ms=20",
        connections=1,
        timeout=0.3,
        progress=False,
    )
    assert time.monotonic() - started < 1.0 + 0.3 + 1.5  # last schedule + timeout + slack
    df = result.df
    timed_out = df["error"].str.startswith("timeout", na=False)
    assert df["status"].eq(200).sum() >= 10
    assert timed_out.sum() >= 50
    assert (df.loc[df["status"].notna(), "latency_s"] <= 0.31).all()
    assert df.loc[timed_out, "latency_s"].between(0.29, 0.8).all()


def test_an_answer_read_after_the_deadline_is_a_timeout_even_if_its_timer_was_late(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A starved event loop (a busy CI machine) can run a request's answer before the timer that
    should have ended its wait (it happened once in CI: a "200" after 0.38 s with a 0.3 s
    timeout). Here the timer never fires at all, the latest a timer can be: the answer, 0.3 s
    after the schedule, still counts as a timeout of 0.1 s, never as a slow success."""
    no_timer = aiohttp.ClientTimeout(total=None)
    monkeypatch.setattr(aiohttp, "ClientTimeout", lambda **_: no_timer)
    result = load.run(server, rate=10, requests=2, path="/slow?ms=300", timeout=0.1, progress=False)
    assert result.df["error"].tolist() == [load.timeout_error(0.1)] * 2
    assert result.df["status"].isna().all()
    assert (result.df["latency_s"] >= 0.3).all()  # they were read, late


def test_requests_the_generator_could_not_start_in_time_are_errors(server: str) -> None:
    result = load.run(server, rate=100, requests=5, path="/fast", timeout=1e-9, progress=False)
    assert result.df["error"].eq(load.LATE).all()
    assert result.df["sent_s"].isna().all()
    assert result.summary()["achieved_rate"] == 0


def test_server_errors_count_in_the_error_ratio(server: str) -> None:
    result = load.run(server, rate=100, requests=20, path="/fail", progress=False)
    assert result.df["status"].eq(500).all()
    assert result.summary()["error_ratio"] == 1.0


def test_background_load_stops_when_the_block_ends(server: str) -> None:
    before = received(server)
    started = time.monotonic()
    with load.background(server, rate=50, duration=60, path="/fast", progress=False) as handle:
        wait_until(lambda: received(server) - before >= 25, timeout=10, what="25 requests")
        assert not handle.done()
    elapsed = time.monotonic() - started
    assert handle.wait(timeout=0)
    result = handle.result(timeout=0)
    assert elapsed < 10
    assert 25 <= len(result.df) < 3000
    assert result.df["status"].eq(200).all()
    assert received(server) - before == len(result.df)


def test_an_error_in_the_block_stops_the_load_and_propagates(server: str) -> None:
    with (
        pytest.raises(RuntimeError, match="cell failed"),
        load.background(server, rate=50, duration=60, path="/fast", progress=False) as handle,
    ):
        raise RuntimeError("cell failed")
    assert handle.done()
    assert len(handle.result().df) < 100


def test_run_works_from_inside_a_running_event_loop(server: str) -> None:
    async def notebook_cell() -> load.LoadResult:  # what a Jupyter kernel cell looks like
        return load.run(server, rate=50, requests=10, path="/fast", progress=False)

    assert asyncio.run(notebook_cell()).df["status"].eq(200).all()


def test_progress_bar_goes_to_stderr_on_a_terminal_only(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load.run(server, rate=100, requests=20, path="/fast")
    piped = capsys.readouterr()
    assert (piped.out, piped.err) == ("", "")  # off a terminal: no frames (issue 23 item 6)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    load.run(server, rate=100, requests=20, path="/fast")
    shown = capsys.readouterr()
    assert "load 100/s" in shown.err
    assert shown.out == ""


def test_a_load_stopped_early_says_so_in_its_headless_line(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "585/16200 req", which reads like a failure (issue 22)."""
    monkeypatch.setenv(HEADLESS_ENV, "1")
    before = received(server)
    with load.background(server, rate=50, duration=60, path="/fast") as handle:
        wait_until(lambda: received(server) - before >= 10, timeout=10, what="10 requests")
    sent = len(handle.result().df)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"load 50/s → 1 URL, stopped after {sent} of the 3000 planned: ")
    assert f"{sent}/{sent} req in " in line
