"""`lab up` as a real process under hostile conditions (issue 12 items 6-7, issue 10 item 5).

Interrupted at several moments of its start-up, SIGKILLed, started twice at once, orphaned by
the session that started it: each time nothing of the run may survive but what the next `lab
up` stops itself. Every `lab up` here is a real `python -m lab up --target local` with a real
PostgreSQL, backends and Prometheus; the test stops each one it starts, by pid, on every path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from lab.net import http_ok
from lab.postgres import find_postgres_bindir
from lab.procs import stop_leftovers
from lab.stack import INTERRUPTED, State, pid_file, read_state, write_state
from lab.targets import Endpoints
from lab.waits import poll

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def lab_up(state_file: Path, *extra: str, replicas: int = 1) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "lab", "up", "--target", "local", "--json"]
    argv += ["--replicas", str(replicas), "--state-file", str(state_file), *extra]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "LAB_RESTART_DELAY": "0.5"},
    )


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; each is SIGKILLed (with its group) if it still runs."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


class Run:
    """What one `lab up` started, collected while it runs: every descendant's pid, and its
    temporary directory (from its pid file)."""

    def __init__(self, process: subprocess.Popen[str], state_file: Path) -> None:
        self.process = process
        self.state_file = state_file
        self.pids: set[int] = set()
        self.roots: set[Path] = set()

    def look(self) -> None:
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.pids |= {c.pid for c in children}
        try:
            data = json.loads(pid_file(self.state_file).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return
        self.pids |= {int(g["pgid"]) for g in data["groups"]}
        self.roots |= {Path(p) for p in data["paths"]}

    def wait_for(self, what: str, seen: Callable[[list[str]], bool], timeout: float = 120) -> None:
        """Poll until a descendant's command line satisfies `seen` (collecting all along)."""

        def probe() -> bool:
            self.look()
            assert self.process.poll() is None, self.process.communicate()[1]
            for pid in self.pids:
                try:
                    if seen(psutil.Process(pid).cmdline()):
                        return True
                except psutil.Error:
                    continue
            return False

        poll(probe, what=what, timeout=timeout, interval=0.02, progress=False)

    def survivors(self) -> list[str]:
        alive = []
        for pid in self.pids:
            try:
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {process.cmdline()}")
            except psutil.NoSuchProcess:
                continue
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if any(str(root) in cmdline for root in self.roots):
                alive.append(f"{process.pid} {cmdline}")
        return alive


def initdb(cmdline: list[str]) -> bool:
    return any(arg.endswith("/initdb") for arg in cmdline)


def postmaster(cmdline: list[str]) -> bool:
    return bool(cmdline) and cmdline[0].endswith("/postgres") and "-D" in cmdline


def backend(cmdline: list[str]) -> bool:
    return cmdline[-2:] == ["-m", "backend"]


MOMENTS = {"initdb running": initdb, "postgres starting": postmaster, "backends starting": backend}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_signal_at_any_moment_of_start_up_leaves_nothing(
    tmp_path: Path, started: list[subprocess.Popen[str]], moment: str, signum: int
) -> None:
    """Exit code 128 + signal (it never came up), no process of the run, no temp dir.

    Before the fix PostgreSQL (daemonized by pg_ctl into a session of its own) survived an
    interrupt during its start in 8 of 18 tries and `lab up` exited 0.
    """
    state_file = tmp_path / "state.json"
    for _ in range(2):  # twice per moment and signal: 12 interrupted start-ups in all
        process = lab_up(state_file)
        started.append(process)
        run = Run(process, state_file)
        run.wait_for(moment, MOMENTS[moment])
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
        run.look()
        assert process.returncode == INTERRUPTED + signum, err
        assert run.roots, "the run recorded its temporary directory"
        assert run.survivors() == []
        assert [root for root in run.roots if root.exists()] == [], err
        assert not state_file.exists()
        assert not pid_file(state_file).exists()


# Stands in for the postmaster's first instructions, before PostgreSQL installs its signal
# handlers, and holds that moment open: SIGQUIT blocked (so it waits instead of being dropped)
# until `lab up` sends it, then replayed with the disposition the process inherited (default:
# it dies, as the postmaster would; ignored: dropped), then the real postgres is exec'd.
POSTMASTER_START = """\
import os, signal, sys
from pathlib import Path
real, hold = {real!r}, Path({hold!r})
if "listen_addresses=127.0.0.1" not in sys.argv:  # not the postmaster `lab up` starts
    os.execv(real, [real, *sys.argv[1:]])
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGQUIT}})
inherited = "ignored" if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN else "default"
(hold / "sigquit").write_text(inherited)
signal.sigwait({{signal.SIGQUIT}})  # the immediate stop of the interrupted `lab up`
signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGQUIT}})
os.kill(os.getpid(), signal.SIGQUIT)
os.execv(real, [real, *sys.argv[1:]])  # dropped: PostgreSQL starts up all the same
"""


def test_an_interrupt_while_lab_up_waits_for_the_postmaster_in_a_background_job(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """The interrupted start-up that hung (issue 20): `lab up` run as a background job
    (SIGINT and SIGQUIT ignored, as `&` in a script leaves them) is interrupted while it
    waits for the postmaster, which has not installed its handlers yet; the SIGQUIT of the
    immediate stop used to be dropped, the real PostgreSQL started anyway and `lab up` waited
    60 s for it (a checker gave up first and found six postgres processes)."""
    real = find_postgres_bindir()
    # As root the postmaster runs as `postgres`, which can read neither pytest's tmp_path nor,
    # maybe, this interpreter (e.g. under /root): a directory it can, and the system Python.
    interpreter = "/usr/bin/python3" if os.geteuid() == 0 else sys.executable
    if not Path(interpreter).exists():
        pytest.skip(f"the postmaster's stand-in needs {interpreter}")
    shared = Path(tempfile.mkdtemp(prefix="ironclad-test-"))
    shared.chmod(0o755)
    bindir, hold = shared / "bin", shared / "hold"
    bindir.mkdir()
    hold.mkdir(mode=0o777)
    hold.chmod(0o777)
    for tool in ("initdb", "pg_ctl", "psql"):
        (bindir / tool).symlink_to(real / tool)
    wrapper = bindir / "postgres"
    source = POSTMASTER_START.format(real=str(real / "postgres"), hold=str(hold))
    wrapper.write_text(f"#!{interpreter}\n{source}")
    wrapper.chmod(0o755)
    state_file = tmp_path / "state.json"
    argv = [sys.executable, "-m", "lab", "up", "--target", "local", "--replicas", "1"]
    argv += ["--state-file", str(state_file)]
    background = ["sh", "-c", "trap '' INT QUIT; exec \"$@\"", "sh", *argv]  # like `&`
    up = subprocess.Popen(
        background,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PG_BINDIR": str(bindir)},
    )
    started.append(up)
    run = Run(up, state_file)
    try:
        poll(
            lambda: (hold / "sigquit").exists() or up.poll() is not None,
            what="the postmaster to start",
            timeout=120,
            progress=False,
        )
        run.look()
        assert (hold / "sigquit").read_text() == "default", "lab up's children ignore SIGQUIT"
        up.send_signal(signal.SIGINT)  # lab up is polling for the postmaster to be ready
        _, err = up.communicate(timeout=45)  # before the fix: 60 s for PostgreSQL to stop
        run.look()
        assert up.returncode == INTERRUPTED + signal.SIGINT, err
        assert run.survivors() == []
        assert [root for root in run.roots if root.exists()] == [], err
    finally:  # whatever failed above: the run's processes stop (by their recorded groups)
        if up.poll() is None:
            up.kill()
        stop_leftovers(pid_file(state_file))
        shutil.rmtree(shared)


def wait_ready(process: subprocess.Popen[str], state_file: Path) -> None:
    def ready() -> bool:
        assert process.poll() is None, process.communicate()[1]
        state = read_state(state_file)
        return state is not None and state.pid == process.pid

    poll(ready, what="lab up ready", timeout=180, interval=0.2, progress=False)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return err


def test_the_next_lab_up_stops_what_a_sigkilled_one_left(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    state_file = tmp_path / "state.json"
    first = lab_up(state_file)
    started.append(first)
    wait_ready(first, state_file)
    run = Run(first, state_file)
    run.look()
    first.kill()  # no teardown at all
    first.communicate(timeout=30)
    assert run.survivors(), "a SIGKILLed lab up leaves its children running"

    second = lab_up(state_file)
    started.append(second)
    wait_ready(second, state_file)
    assert run.survivors() == []
    assert [root for root in run.roots if root.exists()] == []
    err = stop(second)
    assert "stopped a leftover of a previous `lab up` that was killed: postgres" in err
    assert "backend-0 (process group" in err


def lab(*argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m lab ARGV` to its end (down, status)."""
    command = [sys.executable, "-m", "lab", *argv]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=180)


def test_down_stops_what_a_sigkilled_lab_up_left(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """Issue 20 item 4: `down` used to say "No lab is running" and leave PostgreSQL, Prometheus
    and the backends of a SIGKILLed `up` running; it stops them (its pid file), by pid here."""
    state_file = tmp_path / "state.json"
    up = lab_up(state_file, replicas=2)
    started.append(up)
    wait_ready(up, state_file)
    run = Run(up, state_file)
    run.look()
    assert {"postgres", "prometheus", "backend-0", "backend-1"} <= {
        g["name"] for g in json.loads(pid_file(state_file).read_text())["groups"]
    }
    up.kill()  # no teardown at all
    up.communicate(timeout=30)
    try:
        assert run.survivors(), "a SIGKILLed lab up leaves its children running"
        status = lab("status", "--state-file", str(state_file))
        assert status.returncode == 1
        assert "A killed `up` left these running: " in status.stderr
        assert "Stop them: ironclad-lab down" in status.stderr

        down = lab("down", "--state-file", str(state_file))
        assert down.returncode == 0, down.stderr
        assert "a killed one (SIGKILL, a crash) had left these; stopped:" in down.stdout
        assert "postgres (process group" in down.stdout
        assert run.survivors() == []
        assert [root for root in run.roots if root.exists()] == [], down.stderr
        assert not state_file.exists()
        assert not pid_file(state_file).exists()
        again = lab("down", "--state-file", str(state_file))
        assert "No lab is running" in again.stdout
    finally:  # whatever failed above: the test's own processes stop (by their recorded groups)
        stop_leftovers(pid_file(state_file))


def test_a_stale_state_file_naming_a_reused_pid_does_not_stop_lab_up(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """Issue 20 item 3: a state file left by a crash whose pid now belongs to an unrelated
    process (a real one) that started later: `up` starts anyway, and leaves the stranger
    alone. (`status` and `down` with such a file: tests/unit/lab/test_cli.py.)"""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], text=True)
    started.append(stranger)
    state_file = tmp_path / "state.json"
    endpoints = Endpoints("local", "http://127.0.0.1:1", ["http://127.0.0.1:1"], "", None, "t")
    earlier = psutil.Process(stranger.pid).create_time() - 3600
    write_state(state_file, State(endpoints, stranger.pid, "ironclad-demo", started=earlier))
    up = lab_up(state_file)
    started.append(up)
    wait_ready(up, state_file)
    state = read_state(state_file)
    assert state is not None
    assert (state.pid, state.started) == (up.pid, psutil.Process(up.pid).create_time())
    stop(up)
    assert stranger.poll() is None, "the stranger was signalled"


def test_a_second_lab_up_on_the_same_state_file_exits_at_once_naming_the_first(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """Started together: exactly one comes up; the other fails within seconds, naming it."""
    state_file = tmp_path / "state.json"
    pair = [lab_up(state_file), lab_up(state_file)]
    started.extend(pair)

    def one_exited() -> subprocess.Popen[str] | None:
        return next((p for p in pair if p.poll() is not None), None)

    loser = poll(one_exited, what="one of two lab ups to exit", timeout=60, progress=False)
    winner = next(p for p in pair if p is not loser)
    _, err = loser.communicate(timeout=10)
    assert loser.returncode == 1
    assert f"Another `lab up` runs on {state_file}: pid {winner.pid}, target=local" in err
    wait_ready(winner, state_file)
    stop(winner)


PARENT = textwrap.dedent(
    """
    import sys, time
    from dataclasses import replace
    from pathlib import Path
    from lab.session import connect
    from lab.settings import get_settings

    settings = replace(get_settings(), replicas=1, state_file_override=Path(sys.argv[1]))
    env = connect("local", settings=settings)
    print(env.pid, flush=True)
    time.sleep(600)
    """
)


def test_a_lab_up_started_by_connect_stops_when_its_session_is_killed(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """The kernel that called `lab.connect()` dies without notebook 99: its `lab up` tears
    itself down (it watches the pid it was given), so nothing is orphaned."""
    state_file = tmp_path / "state.json"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(state_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "LAB_REPLICAS": "1"},
    )
    started.append(parent)
    assert parent.stdout is not None
    up_pid = int(parent.stdout.readline())
    up = psutil.Process(up_pid)
    state = read_state(state_file)
    assert state is not None
    assert state.parent == parent.pid
    assert all(http_ok(f"{url}/health/ready") for url in state.endpoints.backends)
    run = Run(parent, state_file)  # collects the lab up's children through the parent
    run.look()
    assert up_pid in run.pids
    parent.kill()
    parent.communicate(timeout=30)
    try:
        poll(lambda: not up.is_running(), what="the orphaned lab up to stop", timeout=120)
    finally:
        if up.is_running():
            up.kill()
    assert run.survivors() == []
    assert not state_file.exists()
