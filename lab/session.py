"""`lab.connect()` / `lab.shutdown()`: attach to (or start) the stack `python -m lab up` runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from lab.errors import LabError, LabNotRunningError, NeedsClusterError, ProcessFailedError
from lab.settings import Settings, get_settings
from lab.targets import Endpoints
from lab.waits import poll

if TYPE_CHECKING:
    from lab.chaos import BackendChaos
    from lab.k8s import Cluster
    from lab.prom import Prom

UP_TIMEOUT = {"local": 120.0, "kind": 1800.0}  # kind may create a cluster and build an image


@dataclass(frozen=True)
class State:
    """The state file: endpoints plus the pid of `python -m lab up` and the namespace."""

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
            f"Delete it if no `python -m lab up` runs: rm {path}",
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


@dataclass
class Lab:
    """A handle on the running stack; `prom`, `chaos` and `k8s` are created on first use."""

    endpoints: Endpoints
    namespace: str
    pid: int
    reason: str
    settings: Settings = field(repr=False)

    @property
    def target(self) -> str:
        return self.endpoints.target

    @property
    def on_cluster(self) -> bool:
        return self.target == "kind"

    @cached_property
    def prom(self) -> Prom:
        from lab.prom import Prom

        return Prom(self.endpoints.prometheus)

    @cached_property
    def chaos(self) -> BackendChaos:
        from lab.chaos import BackendChaos

        return BackendChaos(self.endpoints.backends, self.endpoints.chaos_token)

    @cached_property
    def k8s(self) -> Cluster:
        if not self.on_cluster:
            raise NeedsClusterError(
                f"This needs a Kubernetes cluster, but the lab runs on target={self.target}.",
                "Skip this cell (it is tagged needs-cluster), or start Docker and run the lab "
                "with target='kind'.",
            )
        from lab.k8s import Cluster

        return Cluster.connect(self.namespace, context=f"kind-{self.settings.cluster_name}")


_started: subprocess.Popen[bytes] | None = None


def connect(target: str = "auto", start: bool = True, settings: Settings | None = None) -> Lab:
    """Attach to the running lab, or start `python -m lab up` in the background and wait for it."""
    settings = settings or get_settings()
    state = read_state(settings.state_file)
    if state is not None:
        running = state.endpoints.target
        if target not in ("auto", running):
            raise LabError(
                f"A lab on target={running} is running (pid {state.pid}); you asked "
                f"for target={target}.",
                "Use it, or stop it first: lab.shutdown().",
            )
        return Lab(
            state.endpoints,
            state.namespace,
            state.pid,
            f"target={running}: attached to the running lab (pid {state.pid})",
            settings,
        )
    if not start:
        raise LabNotRunningError(
            "No lab is running.",
            "Start one: `python -m lab up --target local` in a terminal, "
            "or lab.connect(start=True).",
        )
    return _start(target, settings)


def _start(target: str, settings: Settings) -> Lab:
    global _started
    from lab.targets import choose

    choice = choose(target)
    log = settings.state_file.with_name("lab-up.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "lab",
        "up",
        "--target",
        choice.name,
        "--json",
        "--state-file",
        str(settings.state_file),
    ]
    with log.open("wb") as out:
        _started = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=settings.repo_root,
        )
    process = _started

    def ready() -> State | None:
        if process.poll() is not None:
            raise ProcessFailedError(
                "python -m lab up", f"exited with code {process.returncode}", log
            )
        state = read_state(settings.state_file)
        return state if state is not None and state.pid == process.pid else None

    state = poll(
        ready,
        what=f"the {choice.name} lab to come up",
        interval=0.5,
        timeout=UP_TIMEOUT[choice.name],
        next_step=f"Read {log}.",
    )
    return Lab(state.endpoints, state.namespace, state.pid, choice.reason, settings)


def shutdown(settings: Settings | None = None, timeout: float = 120.0) -> bool:
    """Stop the running `python -m lab up` (it tears everything down); False if none ran."""
    settings = settings or get_settings()
    state = read_state(settings.state_file)
    if state is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGTERM)

    def gone() -> bool:
        if _started is not None:
            _started.poll()  # reap our own child so it does not linger as a zombie
        return not pid_alive(state.pid)

    poll(gone, what=f"lab up (pid {state.pid}) to stop", timeout=timeout, interval=0.2)
    return True
