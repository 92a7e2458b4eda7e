"""`ironclad-lab reset --to N` and `lab.connect(lesson=N)` on a real local stack (issue 10.2).

The measured case: a kernel restarted in the middle of 07 left chaos latency on, and 06 then
failed with a hint pointing the wrong way. Here the stack is broken the same way (latency on,
a replica killed, memory hogged), connect says so in one line, and the reset repairs it, twice
(idempotent).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from lab.chaos import BackendChaos, kill_replica, restarts
from lab.net import http_ok
from lab.procs import listener_pid
from lab.session import connect, shutdown
from lab.settings import Settings
from lab.waits import poll

REPO = Path(__file__).resolve().parents[3]
MIB = 2**20
pytestmark = pytest.mark.slow


def reset(state_file: Path, lesson: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", "reset", "--to", str(lesson)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "LAB_STATE_FILE": str(state_file)},
        timeout=300,
        check=False,
    )


def test_reset_to_5_repairs_chaos_a_killed_replica_and_hogged_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file = tmp_path / "state.json"
    monkeypatch.setenv("LAB_RESTART_DELAY", "1")  # read by the `lab up` connect() starts
    monkeypatch.setenv("LAB_REPLICAS", "3")
    settings = Settings(repo_root=REPO, state_file_override=state_file, restart_delay=1)
    env = connect("local", settings=settings, lesson=5)
    try:
        assert capsys.readouterr().err == ""  # a fresh lab: nothing to say
        urls = env.endpoints.backends
        chaos = BackendChaos(urls, env.endpoints.chaos_token)
        chaos.set_latency(300)
        chaos.enable()
        chaos.memory_hog(100, url=urls[0])
        hog_pid = listener_pid(urls[0])
        assert psutil.Process(hog_pid).memory_info().rss > 100 * MIB
        kill_replica(urls[1])

        connect("local", settings=settings, lesson=6)  # a new session, next lesson
        err = capsys.readouterr().err  # a progress line while 05's part is built, then one
        [warning] = [line for line in err.replace("\r", "\n").splitlines() if "warning" in line]
        assert warning.startswith("warning: left over from an earlier lesson: chaos on ")
        assert "latency 300 ms" in warning
        assert "`ironclad-lab reset --to 6`" in warning

        first = reset(state_file, 5)
        assert first.returncode == 0, first.stderr
        assert f"fixed: chaos on {urls[0]}: enabled, latency 300 ms" in first.stdout
        assert "ready for lesson 05-scaling-and-resilience (target=local)." in first.stdout
        status = chaos.status()
        assert status["enabled"].tolist() == [False] * 3
        assert status["latency_ms"].tolist() == [0] * 3
        assert status["error_ratio"].tolist() == [0.0] * 3
        assert all(http_ok(f"{url}/health/ready") for url in urls)
        assert listener_pid(urls[0]) == hog_pid  # the hog was freed, not the process restarted
        assert psutil.Process(hog_pid).memory_info().rss < 100 * MIB
        poll(
            lambda: restarts(env)["restarts"].tolist() == [0, 1, 0],
            what="the killed replica's restart in the state file",
            timeout=10,
            progress=False,
        )
        frame = restarts(env)
        assert frame.loc[1, "last_exit_code"] == -9
        assert frame.loc[1, "reason"] == "killed by SIGKILL"

        second = reset(state_file, 5)  # idempotent: nothing left to fix
        assert second.returncode == 0, second.stderr
        assert "fixed:" not in second.stdout
        connect("local", settings=settings, lesson=5)
        assert capsys.readouterr().err == ""
    finally:
        assert shutdown(settings) is True


def test_reset_without_a_running_lab_says_how_to_start_one(tmp_path: Path) -> None:
    result = reset(tmp_path / "state.json", 5)
    assert result.returncode == 1
    assert "No lab is running" in result.stderr
    assert "ironclad-lab reset --to 5" in result.stderr


def test_reset_to_a_lesson_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    """A usage error (exit 2, argparse's usage line), caught before anything is read."""
    result = reset(tmp_path / "state.json", 9)
    assert result.returncode == 2
    assert "'9' is not a lesson: use one of 0, 1, 2, 3, 4, 5, 6, 7" in result.stderr
    assert not (tmp_path / "state.json").exists()
