"""Each lesson builds its part (issue 21 item 1) on a real local stack.

`lab.connect(lesson=N)` starts a `lab up` that builds only what lesson N expects on entry, and
`env.apply(part)` asks that running `lab up` to start the part's process analog; a lab of a
later lesson is brought back to an earlier one's state. A stop signal in the middle of a build
still tears everything down. Every process is a real one (PostgreSQL, backends, Prometheus).
"""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest

from lab.errors import LabError
from lab.lessons import expected_parts
from lab.net import http_ok
from lab.session import connect, shutdown
from lab.settings import Settings
from lab.stack import read_request, read_state, request_file, write_private
from lab.waits import poll

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if psutil.pid_exists(pid)}


def descendants(pid: int) -> set[int]:
    try:
        return {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # gone meanwhile
        return ""


def test_lessons_build_their_parts_in_order_and_connect_brings_any_lab_to_a_lesson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_REPLICAS", "2")  # read by the `lab up` connect() starts
    settings = Settings(repo_root=REPO, state_file_override=tmp_path / "state.json")
    env = connect("local", settings=settings, lesson=3)
    try:
        assert env.parts == ("namespace", "config")  # what 01 and 02 built
        assert env.endpoints.backends == []
        assert env.endpoints.prometheus == ""
        assert env.endpoints.chaos_token  # the analog of 02's Secret: the backends' env
        assert "lesson 03 starts from what the lessons before it built" in env.reason
        with pytest.raises(LabError, match=r"backend \(lesson 04\) needs postgres first") as info:
            env.apply("backend")  # the design's order: PostgreSQL before the backend
        assert "CrashLoopBackOff" in info.value.problem
        assert read_request(settings.state_file) is None  # refused before asking `lab up`
        with pytest.raises(LabError, match="Prometheus is not built yet: lesson 06"):
            _ = env.prom

        built = env.apply("postgres")
        assert built.parts == ("namespace", "config", "postgres")
        assert "started its process analog on local: a PostgreSQL server" in str(built)
        assert env.endpoints.backends == []
        env.apply("backend")
        assert len(env.endpoints.backends) == 2
        assert all(http_ok(f"{url}/health/ready") for url in env.endpoints.backends)
        env.apply("resilience")  # no process analog: nothing starts
        env.apply("monitoring")
        assert http_ok(f"{env.endpoints.prometheus}/-/ready")
        assert len(env.prom.query('up{job="ironclad-backend"} == 1')) == 2
        state = read_state(settings.state_file)
        assert state is not None
        assert state.parts == expected_parts(7)

        # Another learner's kernel starts lesson 04 on this lab: back to what 04 expects.
        prometheus, backends = env.endpoints.prometheus, env.endpoints.backends
        again = connect("local", settings=settings, lesson=4)
        assert again.parts == ("namespace", "config", "postgres")
        assert not http_ok(f"{prometheus}/-/ready")
        assert not any(http_ok(f"{url}/health/live") for url in backends)
        again.apply("backend")
        assert all(http_ok(f"{url}/health/ready") for url in again.endpoints.backends)
    finally:
        shutdown(settings)
    assert read_state(settings.state_file) is None


def test_a_stop_signal_during_a_build_tears_everything_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_REPLICAS", "2")
    settings = Settings(repo_root=REPO, state_file_override=tmp_path / "state.json")
    env = connect("local", settings=settings, lesson=4)
    lab_up = psutil.Process(env.pid)
    seen = descendants(env.pid)  # PostgreSQL's processes
    try:
        write_private(
            request_file(settings.state_file),
            {"id": "stop-me", "parts": list(expected_parts(5))},  # the backends start
        )

        def backends_starting() -> bool:
            seen.update(descendants(env.pid))
            return any("backend" in command(p) for p in lab_up.children(recursive=True))

        poll(backends_starting, what="the backends to start", timeout=60, interval=0.05)
        lab_up.send_signal(signal.SIGTERM)
        lab_up.wait(timeout=120)
    finally:
        shutdown(settings)
    assert alive(seen) == set()
    assert read_state(settings.state_file) is None
