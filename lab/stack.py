"""The running stack: serve it (`lab up`), start it in the background, attach to it, stop it.

One stack runs per state file (`Settings.state_file`). `serve()` is `lab up` itself: it brings
a target up, records the endpoints and its pid in the state file, stays up until SIGINT /
SIGTERM / SIGHUP and tears everything down. `StackProcess` runs that as a child process
(`lab.connect()` and the notebook runner both use it: one readiness check, one timeout table);
`read_state()` attaches to a running one and `stop()` ends it through its pid.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from lab.errors import LabError
from lab.procs import ManagedProcess
from lab.settings import Settings
from lab.targets import Endpoints, choose, make_target
from lab.waits import poll

log = logging.getLogger(__name__)

# How long a `lab up` may take to be ready, by requested target: kind may create a cluster and
# build an image; auto may pick kind; cluster pulls the image into a shared cluster's nodes.
UP_TIMEOUT = {"local": 180.0, "kind": 1800.0, "auto": 1800.0, "cluster": 900.0}


@dataclass(frozen=True)
class State:
    """The state file: endpoints plus the pid of `lab up` and the namespace."""

    endpoints: Endpoints
    pid: int
    namespace: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.endpoints.to_dict(), "pid": self.pid, "namespace": self.namespace}


def write_state(path: Path, state: State) -> None:
    """Write the state file atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.touch(mode=0o600)  # it holds the chaos token: owner-only, before any byte is written
    partial.write_text(json.dumps(state.to_dict(), indent=2) + "\n")
    partial.replace(path)


def read_state(path: Path) -> State | None:
    """The state of a running lab, or None (no file, or its process is gone: file removed)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise LabError(
            f"{path} is not valid JSON ({exc}).",
            f"Delete it if no `ironclad-lab up` runs: rm {path}",
        ) from exc
    state = State(Endpoints.from_dict(data), int(data["pid"]), str(data["namespace"]))
    if not pid_alive(state.pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    return state


def pid_alive(pid: int) -> bool:
    """True when `pid` is a live process (zombies count as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop(settings: Settings, timeout: float = 120.0) -> State | None:
    """SIGTERM the running `lab up` (it tears everything down) and wait until it is gone.

    Returns the state it stopped, or None when none ran.
    """
    state = read_state(settings.state_file)
    if state is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGTERM)

    poll(
        lambda: not pid_alive(state.pid),  # a zombie child counts as gone: its owner reaps it
        what=f"lab up (pid {state.pid}) to stop",
        timeout=timeout,
        interval=0.2,
    )
    return state


class Shutdown(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP, like KeyboardInterrupt is by SIGINT."""


def _raise_shutdown(signum: int, _frame: FrameType | None) -> None:
    raise Shutdown(signal.Signals(signum).name)


def serve(
    settings: Settings,
    requested: str,
    announce: Callable[[Endpoints], None],
    replicas: int | None = None,
) -> None:
    """`lab up`: bring `requested` up, record it, `announce` it, wait for a signal, tear down.

    Must run in the main thread (it installs SIGTERM/SIGHUP handlers).
    """
    running = read_state(settings.state_file)
    if running is not None:
        raise LabError(
            f"A lab on target={running.endpoints.target} already runs (pid "
            f"{running.pid}, state file {settings.state_file}).",
            "Use it, or stop it first: ironclad-lab down.",
        )
    choice = choose(requested, settings)
    log.info(choice.reason)
    target = make_target(choice.name, settings, replicas)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_shutdown)
    try:
        endpoints = target.up()
        write_state(settings.state_file, State(endpoints, os.getpid(), settings.namespace))
        announce(endpoints)
        while True:
            signal.pause()
    except (KeyboardInterrupt, Shutdown):
        log.info("stopping the %s lab …", choice.name)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # let teardown finish
        target.down()
        state = read_state(settings.state_file)
        if state is not None and state.pid == os.getpid():
            settings.state_file.unlink()


@dataclass
class StackProcess:
    """`python -m lab up --target T --json` as a child process, from ready to torn down.

    Ready means: the state file names this child's pid (`lab up` writes it once every part
    answers). Its output goes to `log_path` (default: lab-up.log beside the state file).
    """

    requested: str
    settings: Settings
    log_path: Path | None = None
    env: dict[str, str] | None = None
    process: ManagedProcess | None = field(default=None, init=False)
    state: State | None = field(default=None, init=False)

    @property
    def log(self) -> Path:
        return self.log_path or self.settings.state_file.with_name("lab-up.log")

    @property
    def target(self) -> str:
        return self.state.endpoints.target if self.state else self.requested

    @property
    def namespace(self) -> str:
        return self.state.namespace if self.state else self.settings.namespace

    @property
    def state_file(self) -> Path:
        return self.settings.state_file

    def start(self) -> State:
        """Start `lab up` and wait until it is ready; on any failure stop it and raise."""
        self.log.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "lab", "up", "--target", self.requested, "--json"]
        argv += ["--state-file", str(self.settings.state_file)]
        if self.settings.images_archive is not None:
            argv += ["--images", str(self.settings.images_archive)]
        env = {**(os.environ if self.env is None else self.env), "PYTHONUNBUFFERED": "1"}
        self.process = ManagedProcess("lab up", argv, self.log, env, self.settings.repo_root)
        process = self.process.start()

        def ready() -> State | None:
            process.ensure_running()
            state = read_state(self.settings.state_file)
            return state if state is not None and state.pid == process.pid else None

        try:
            self.state = poll(
                ready,
                what=f"the {self.requested} lab to come up",
                timeout=UP_TIMEOUT[self.requested],
                interval=0.2,
                progress=False,
                diagnose=lambda: process.log_tail(20),
                next_step=f"Read {self.log}.",
            )
        except BaseException:
            self.stop()
            raise
        return self.state

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def log_tail(self, lines: int = 15) -> str:
        return self.process.log_tail(lines) if self.process else ""

    def stop(self) -> None:
        """Stop `lab up` and everything it started (kind: waits for the namespace to go)."""
        if self.process is not None:
            self.process.stop(timeout=self.settings.rollout_timeout + 60)

    def __enter__(self) -> StackProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
