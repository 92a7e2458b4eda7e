"""lab.session and lab.stack: the state file, attaching to a running lab, and shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from lab.errors import LabError, LabNotRunningError, NeedsClusterError, ProcessFailedError
from lab.lessons import PARTS
from lab.procs import (
    STOP_SIGNALS,
    Shutdown,
    held,
    pid_alive,
    raise_on_stop_signals,
    stop_leftovers,
)
from lab.session import Lab, connect, shutdown
from lab.settings import Settings, find_repo_root
from lab.stack import StackProcess, State, read_state, write_state
from lab.targets import Endpoints

ENDPOINTS = Endpoints(
    target="local",
    backend="http://127.0.0.1:1",
    backends=["http://127.0.0.1:1"],
    prometheus="http://127.0.0.1:2",
    grafana=None,
    chaos_token="secret",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(repo_root=tmp_path, state_file_override=tmp_path / "state.json")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process standing in for `python -m lab up` (only its pid and SIGTERM matter)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_state_file_has_the_endpoints_pid_and_namespace(settings: Settings) -> None:
    started = psutil.Process().create_time()
    state = State(ENDPOINTS, os.getpid(), "ironclad-demo", started=started)
    write_state(settings.state_file, state)
    data = json.loads(settings.state_file.read_text())
    assert data == {
        **ENDPOINTS.to_dict(),
        "pid": os.getpid(),
        "namespace": "ironclad-demo",
        "parent": None,
        "replicas": [],
        "started": started,
        "kubernetes": None,  # the local target has no Kubernetes identity
        "parts": list(PARTS),  # the whole stack built (`lab.lessons`)
        "request": None,  # no notebook asked `lab up` to build anything yet
        "error": None,
    }
    assert read_state(settings.state_file) == state
    assert [p.name for p in settings.state_file.parent.iterdir()] == ["state.json"]


def test_a_state_file_of_a_dead_process_is_removed(settings: Settings) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    write_state(settings.state_file, State(ENDPOINTS, int(dead.stdout), "ironclad-demo"))
    assert read_state(settings.state_file) is None
    assert not settings.state_file.exists()


def test_a_corrupt_state_file_says_how_to_recover(settings: Settings) -> None:
    settings.state_file.write_text("{not json")
    with pytest.raises(LabError, match="rm "):
        read_state(settings.state_file)


def test_connect_attaches_to_the_running_lab(settings: Settings) -> None:
    write_state(settings.state_file, State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    env = connect("auto", settings=settings)
    assert isinstance(env, Lab)
    assert (env.endpoints, env.target, env.on_cluster, env.namespace) == (
        ENDPOINTS,
        "local",
        False,
        "ironclad-demo",
    )
    assert env.reason == f"target=local: attached to the running lab (pid {os.getpid()})"
    assert connect("local", settings=settings).pid == os.getpid()


def test_connect_refuses_a_different_target_than_the_running_one(settings: Settings) -> None:
    write_state(settings.state_file, State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    with pytest.raises(LabError, match="target=local is running") as info:
        connect("kind", settings=settings)
    assert "lab.shutdown()" in info.value.next_step


def test_connect_without_a_lab_and_without_start_says_how_to_start(settings: Settings) -> None:
    with pytest.raises(LabNotRunningError, match="No lab is running") as info:
        connect("local", start=False, settings=settings)
    assert "ironclad-lab up" in info.value.next_step


@pytest.mark.usefixtures("spanish")
def test_an_apply_refused_says_why_and_what_to_do_in_spanish(settings: Settings) -> None:
    """env.apply on a lab without the parts before it: refused before anything is built, the
    reason and the fix in the learner's language (lab.po)."""
    env = Lab(ENDPOINTS, "ironclad-demo", os.getpid(), "", settings, parts=("namespace",))
    with pytest.raises(LabError) as info:
        env.apply("backend")
    assert info.value.problem.startswith("backend (lección 04) necesita antes config, postgres: ")
    assert "nunca está lista" in info.value.problem  # the order's reason, translated too
    assert info.value.next_step.startswith("Construye primero config (lección 02")
    with pytest.raises(LabNotRunningError) as stopped:  # connect speaks its settings' language
        connect("local", start=False, settings=replace(settings, lang="es"))
    assert str(stopped.value) == (
        "No hay ningún laboratorio en marcha.\n→ Inicia uno: `ironclad-lab up --target local` "
        "en una terminal, o lab.connect(start=True)."
    )


def test_an_apply_refused_is_in_english_without_a_language_chosen(settings: Settings) -> None:
    env = Lab(ENDPOINTS, "ironclad-demo", os.getpid(), "", settings, parts=("namespace",))
    with pytest.raises(LabError) as info:
        env.apply("backend")
    assert info.value.problem.startswith("backend (lesson 04) needs config, postgres first: ")
    assert info.value.next_step.startswith("Build config first (lesson 02")


def test_k8s_on_the_local_target_is_a_clear_error(settings: Settings) -> None:
    env = Lab(ENDPOINTS, "ironclad-demo", os.getpid(), "", settings)
    with pytest.raises(NeedsClusterError, match="target=local"):
        _ = env.k8s


def test_shutdown_terminates_the_lab_process(
    settings: Settings, sleeper: subprocess.Popen[bytes]
) -> None:
    write_state(settings.state_file, State(ENDPOINTS, sleeper.pid, "ironclad-demo"))
    assert shutdown(settings, timeout=10) is True
    assert sleeper.wait(5) == -15
    assert not pid_alive(sleeper.pid)


def test_shutdown_without_a_lab_does_nothing(settings: Settings) -> None:
    assert shutdown(settings) is False


def test_a_lab_up_that_exits_early_fails_the_start_with_its_log(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """A real `python -m lab up` child that refuses to start (a lab already runs on this state
    file) is reported at once with its own words, not after the readiness timeout."""
    settings = Settings(repo_root=find_repo_root(), state_file_override=tmp_path / "state.json")
    write_state(settings.state_file, State(ENDPOINTS, sleeper.pid, "ironclad-demo"))
    up = StackProcess("local", settings)
    with pytest.raises(ProcessFailedError, match="already runs") as info:
        up.start()
    assert "exited with code 1" in info.value.problem
    assert not up.running()
    assert up.log == tmp_path / "lab-up.log"


def test_state_file_is_readable_by_its_owner_only(settings: Settings) -> None:
    """It holds the chaos token (issue 12 item 8), so no other local user may read it."""
    previous = os.umask(0o022)  # a usual umask: new files would be 0644
    try:
        write_state(settings.state_file, State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    finally:
        os.umask(previous)
    assert settings.state_file.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def own_session_sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process in a process group of its own, like every child `lab up` starts."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    yield process
    process.kill()
    process.wait()


def test_leftovers_are_stopped_only_while_their_group_is_the_recorded_one(
    tmp_path: Path, own_session_sleeper: subprocess.Popen[bytes]
) -> None:
    """After a SIGKILL of `lab up`, the next one stops what its pid file names — unless the
    pid now belongs to another process (start time differs): then it is left alone."""
    pid = own_session_sleeper.pid
    created = psutil.Process(pid).create_time()
    directory = tmp_path / "ironclad-lab-x"
    directory.mkdir()
    pids = tmp_path / "state.json.pids"

    def record(start_time: float) -> None:
        group = {"pgid": pid, "name": "backend-0", "created": start_time}
        pids.write_text(json.dumps({"owner": 1, "groups": [group], "paths": []}))

    record(created - 100)  # the recorded process started earlier: this pid was reused
    assert stop_leftovers(pids) == []
    assert own_session_sleeper.poll() is None
    record(created)
    data = json.loads(pids.read_text())
    pids.write_text(json.dumps({**data, "paths": [str(directory)]}))
    assert stop_leftovers(pids) == [f"backend-0 (process group {pid})", f"directory {directory}"]
    assert own_session_sleeper.wait(10) == -signal.SIGTERM
    assert not directory.exists()
    assert not pids.exists()


def signal_self(signum: int, reached: list[bool], hold: bool) -> None:
    """Send `signum` to this process, then run bytecodes (where Python runs its handler)."""
    with held() if hold else contextlib.nullcontext():
        os.kill(os.getpid(), signum)
        for _ in range(1000):
            reached.append(True)


def test_a_stop_signal_inside_held_is_raised_when_the_block_ends() -> None:
    """`lab up` starts and records each child inside `held()`: a signal cannot split them."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    try:
        raise_on_stop_signals()
        reached: list[bool] = []
        with pytest.raises(Shutdown) as info:
            signal_self(signal.SIGTERM, reached, hold=True)
        assert info.value.signum == signal.SIGTERM
        assert len(reached) == 1000  # the whole block ran; the signal waited for its end
        reached.clear()
        with pytest.raises(Shutdown):
            signal_self(signal.SIGINT, reached, hold=False)
        assert len(reached) < 1000  # outside `held()` it is raised at once
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_connect_refuses_a_namespace_other_than_the_running_labs(settings: Settings) -> None:
    write_state(settings.state_file, State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    assert connect("local", settings=settings, namespace="ironclad-demo").namespace == (
        "ironclad-demo"
    )
    with pytest.raises(LabError, match="uses namespace ironclad-demo; you asked for learner-1"):
        connect("local", settings=settings, namespace="learner-1")


def test_connect_stops_a_lab_whose_session_is_gone_instead_of_attaching(
    settings: Settings, sleeper: subprocess.Popen[bytes]
) -> None:
    """A `lab up` whose starting kernel died may still be tearing down: the next connect()
    does not attach to it, it stops it (and here, with start=False, reports none running)."""
    dead_parent = subprocess.Popen([sys.executable, "-c", ""])
    dead_parent.wait()
    state = State(ENDPOINTS, sleeper.pid, "ironclad-demo", parent=dead_parent.pid)
    write_state(settings.state_file, state)
    with pytest.raises(LabNotRunningError):
        connect("local", start=False, settings=settings)
    assert sleeper.wait(10) == -signal.SIGTERM
