"""The running stack: serve it (`lab up`), start it in the background, attach to it, stop it.

One stack runs per state file (`Settings.state_file`, locked by the `lab up` that owns it;
beside it a pid file of that run's process groups). `serve()` is `lab up` itself: it brings
a target up, records the endpoints, its pid and start time in the state file, stays up until
SIGINT / SIGTERM / SIGHUP (or the end of the session that started it) and tears everything
down. `StackProcess` runs that as a child process (`lab.connect()` and the notebook runner
both use it: one readiness check, one timeout table); `read_state()` attaches to a running
one and `stop()` ends it through its pid, or stops what a killed one left (its pid file).
How long a `lab up` may take to be ready is the target's (`lab.targets.spec`).

Over 400 lines on purpose: the state file, its lock and the pid file are a protocol between the
one `lab up` that writes them and everything that reads them (status, down, connect, the runner,
a second `up`); writer and readers stay in one module so that they cannot drift apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import psutil

from lab.errors import LabError, LabNotRunningError, NeedsClusterError, StateFileLockedError
from lab.i18n import _
from lab.identity import Identity
from lab.lessons import PARTS
from lab.procs import (
    GROUPS,
    STOP_SIGNALS,
    ManagedProcess,
    Shutdown,
    pid_alive,
    raise_on_stop_signals,
    same_start,
    started_at,
    stop_groups,
    stop_leftovers,
)
from lab.settings import Settings
from lab.targets import (
    REASON_ENV,
    Endpoints,
    ReplicaRecord,
    Target,
    choose,
    make_target,
    spec,
    up_timeout,
)
from lab.waits import poll

log = logging.getLogger(__name__)

# Exit code of a `lab up` stopped by a signal before it was ready (128 + signal number, as a
# shell reports it): it did not do its job. Stopped after "ready" is its normal end: 0.
INTERRUPTED = 128


@dataclass(frozen=True)
class State:
    """The state file: endpoints, the pid of `lab up`, the namespace, the session whose end
    stops it (`parent`, or None), per local replica its restarts and last exit code, when
    `lab up` started (psutil create_time: after a crash its pid may be another process's), and
    (kind, cluster) the Kubernetes identity every later command uses (`lab.identity`)."""

    endpoints: Endpoints
    pid: int
    namespace: str
    parent: int | None = None
    replicas: tuple[ReplicaRecord, ...] = ()
    started: float | None = None  # None (an older state file): only the pid is checked
    identity: Identity | None = None
    parts: tuple[str, ...] = PARTS  # what is built (`lab.lessons`); an older file: all of it
    request: str | None = None  # the id of the last build request answered (`build`)
    error: str | None = None  # why that request failed, or None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.endpoints.to_dict(),
            "pid": self.pid,
            "namespace": self.namespace,
            "parent": self.parent,
            "replicas": [asdict(r) for r in self.replicas],
            "started": self.started,
            "kubernetes": self.identity.to_dict() if self.identity else None,
            "parts": list(self.parts),
            "request": self.request,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        started = data.get("started")
        kubernetes = data.get("kubernetes")
        return cls(
            Endpoints.from_dict(data),
            int(data["pid"]),
            str(data["namespace"]),
            data.get("parent"),
            tuple(ReplicaRecord(**r) for r in data.get("replicas", [])),
            float(started) if started is not None else None,
            Identity.from_dict(kubernetes) if kubernetes else None,
            tuple(data.get("parts", PARTS)),
            data.get("request"),
            data.get("error"),
        )

    def alive(self) -> bool:
        """True while the `lab up` that wrote this state runs (not a process that got its pid)."""
        return pid_alive(self.pid, self.started)

    def kubernetes(self) -> Identity:
        """The recorded identity of a kind/cluster lab; LabError on the local target (or for a
        state file written before identities were recorded)."""
        if self.identity is None:
            target = self.endpoints.target
            if not spec(target).has_cluster:
                raise NeedsClusterError(
                    _(
                        "The running lab is on target={target}: it has no Kubernetes cluster."
                    ).format(target=target),
                    _("Use a kind or cluster lab for this (ironclad-lab up --target kind)."),
                )
            raise LabError(
                _(
                    "The running {target} lab did not record its Kubernetes identity (it was "
                    "started by an older version of the lab)."
                ).format(target=target),
                _("Restart it: ironclad-lab down, then ironclad-lab up again."),
            )
        return self.identity


def pid_file(state_file: Path) -> Path:
    """The process groups (and directories) of the `lab up` owning `state_file`."""
    return state_file.with_name(f"{state_file.name}.pids")


def request_file(state_file: Path) -> Path:
    """Where a notebook asks the running `lab up` to build parts (`build`)."""
    return state_file.with_name(f"{state_file.name}.build")


def lock_file(state_file: Path) -> Path:
    """Locked (flock) by the `lab up` owning `state_file` for as long as it runs."""
    return state_file.with_name(f"{state_file.name}.lock")


def write_state(path: Path, state: State) -> None:
    """Write the state file atomically (readers never see half a file)."""
    write_private(path, state.to_dict())


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as JSON, owner-only and atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.touch(mode=0o600)  # the state holds the chaos token: owner-only before any byte
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


@dataclass(frozen=True)
class BuildRequest:
    """A notebook's request to the running `lab up`: make exactly `parts` built."""

    id: str
    parts: tuple[str, ...]


def read_request(state_file: Path) -> BuildRequest | None:
    """The last build request written for the `lab up` of `state_file`, or None."""
    try:
        data = json.loads(request_file(state_file).read_text())
        return BuildRequest(str(data["id"]), tuple(data["parts"]))
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return None  # none yet, or one being replaced: the next look reads it


def build(settings: Settings, parts: Sequence[str], timeout: float) -> State:
    """Ask the running `lab up` to make exactly `parts` built (`lab.lessons.PARTS` order:
    missing ones are built in order, extra ones removed in reverse) and wait for its answer:
    the new state. LabError when none runs, it stops meanwhile, or the build failed."""
    state = read_state(settings.state_file)
    if state is None:
        raise LabNotRunningError(
            _("No lab is running."), _("Start one: lab.connect() or `ironclad-lab up`.")
        )
    if tuple(parts) == state.parts:
        return state
    request = BuildRequest(uuid.uuid4().hex, tuple(parts))
    write_private(request_file(settings.state_file), asdict(request))

    def answered() -> State | None:
        now = read_state(settings.state_file)
        if now is None or now.pid != state.pid:
            raise LabNotRunningError(
                _("The lab (pid {pid}) stopped while building {parts}.").format(
                    pid=state.pid, parts=", ".join(parts)
                ),
                _("Read {log}, then lab.connect() again.").format(
                    log=settings.state_file.with_name("lab-up.log")
                ),
            )
        return now if now.request == request.id else None

    adding = [p for p in parts if p not in state.parts]
    done = poll(
        answered,
        what=(
            _("the lab to build {parts}").format(parts=", ".join(adding))
            if adding
            else _("the lab to remove parts")
        ),
        timeout=timeout,
        interval=0.1,
    )
    if done.error:
        raise LabError(done.error, _("Fix what it says, then run this cell again."))
    return done


def read_state(path: Path) -> State | None:
    """The state of a running lab, or None (no file, or its `lab up` is gone: file removed;
    a process that reuses its pid, started at another time, is not it)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise LabError(
            _("{path} is not valid JSON ({error}).").format(path=path, error=exc),
            _("Delete it if no `ironclad-lab up` runs: rm {path}").format(path=path),
        ) from exc
    state = State.from_dict(data)
    if not state.alive():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    return state


@dataclass(frozen=True)
class Stopped:
    """What `stop` ended: the running `lab up` (`state`), or, when a killed one (SIGKILL, a
    crash) left its processes behind, one line per thing of it stopped or removed."""

    state: State | None = None
    leftovers: tuple[str, ...] = ()


def stop(settings: Settings, timeout: float = 120.0) -> Stopped | None:
    """SIGTERM the running `lab up` (it tears everything down) and wait until it is gone; with
    none running, stop what a killed one left (its pid file). None when there was nothing."""
    state = read_state(settings.state_file)
    if state is None:
        left = stop_abandoned(settings.state_file)
        return Stopped(leftovers=tuple(left)) if left else None
    with contextlib.suppress(psutil.NoSuchProcess):
        lab_up = psutil.Process(state.pid)
        if state.started is None or same_start(lab_up, state.started):
            lab_up.send_signal(signal.SIGTERM)  # psutil refuses if the pid was reused since
    poll(
        lambda: not state.alive(),  # a zombie child counts as gone: its owner reaps it
        what=_("lab up (pid {pid}) to stop").format(pid=state.pid),
        timeout=timeout,
        interval=0.2,
    )
    return Stopped(state)


def stop_abandoned(state_file: Path) -> list[str]:
    """Stop what a `lab up` killed before its teardown left (its pid file), holding the state
    file's lock meanwhile so that no `lab up` starts on it; one line per thing stopped."""
    if not pid_file(state_file).exists():
        return []
    try:
        with exclusive(state_file, "`ironclad-lab down`, stopping what a killed `lab up` left"):
            state_file.unlink(missing_ok=True)  # its `lab up` is gone (read_state said so)
            return stop_leftovers(pid_file(state_file))
    except StateFileLockedError as locked:  # a `lab up` that is not ready yet holds it
        raise LabError(
            _("A `lab up` is starting on {state_file} ({holder}); it has no state yet.").format(
                state_file=state_file, holder=locked.holder
            ),
            _(
                "Press Ctrl-C where it runs (it cleans up), or run ironclad-lab down again once "
                "it is ready."
            ),
        ) from None


@contextlib.contextmanager
def exclusive(state_file: Path, doing: str) -> Iterator[IO[str]]:
    """Hold the state file's lock (flock, released by the kernel however this process ends),
    naming this process and what it is `doing` in it (`lab up`: its target); raise LabError
    naming the holder when another process (a `lab up`, a `down` cleaning up) has it."""
    path = lock_file(state_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or _("a `lab up` that is just starting")
            raise StateFileLockedError(
                _("Another `lab up` runs on {state_file}: {holder}.").format(
                    state_file=state_file, holder=holder
                ),
                _("Use it (lab.connect() attaches), or stop it first: ironclad-lab down."),
                holder,
            ) from None
        describe_holder(lock, doing)
        try:
            yield lock
        finally:
            lock.truncate(0)


def describe_holder(lock: IO[str], doing: str) -> None:
    """What a second `lab up` reads in the lock file: this pid and what it is doing."""
    lock.truncate(0)
    lock.write(f"pid {os.getpid()}, {doing}")
    lock.flush()


def watch_parent(parent: int) -> None:
    """SIGTERM this process (like `ironclad-lab down`) once `parent` is gone.

    `lab.connect()` passes the notebook kernel's pid. PR_SET_PDEATHSIG alone would not do:
    it fires when the *thread* that started us ends (not the process), it is Linux-only, and
    it cannot tell an exec'd or reparented session; polling the pid and its start time can.
    """
    created = started_at(parent)

    def watch() -> None:
        while created is not None and pid_alive(parent, created):
            time.sleep(1.0)
        log.warning("the session that started this lab (pid %d) is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="lab-parent-watch", daemon=True).start()


def serve(
    settings: Settings,
    requested: str,
    announce: Callable[[Endpoints], None],
    replicas: int | None = None,
    parent: int | None = None,
    parts: Sequence[str] = PARTS,
) -> int:
    """`lab up`: bring `requested` up with `parts` built, record it, `announce` it, build what
    notebooks ask for (`build`) until a signal, tear down.

    One per state file (an exclusive lock; a second one fails at once naming the first). It
    first stops what a SIGKILLed predecessor left (its pid file). Every child is on record
    from its first moment and stop signals wait while one starts, so SIGINT/SIGTERM/SIGHUP at
    any moment tear down everything. With `parent`, it also stops when that process is gone.
    Returns the exit code: 0 when stopped after it was ready, 128 + signal when stopped
    before. Must run in the main thread (it installs signal handlers).
    """
    raise_on_stop_signals()
    try:
        with exclusive(settings.state_file, f"target={requested}") as lock:
            for line in stop_leftovers(pid_file(settings.state_file)):
                log.warning("stopped a leftover of a previous `lab up` that was killed: %s", line)
            running = read_state(settings.state_file)
            if running is not None:
                raise LabError(
                    _(
                        "A lab on target={target} already runs (pid {pid}, state file "
                        "{state_file})."
                    ).format(
                        target=running.endpoints.target,
                        pid=running.pid,
                        state_file=settings.state_file,
                    ),
                    _("Use it, or stop it first: ironclad-lab down."),
                )
            return _serve_locked(settings, requested, announce, replicas, parent, parts, lock)
    except Shutdown as stopped:  # before it was ready (after, _serve_locked returns 0)
        log.info("stopped (%s) before the lab was ready", stopped)
        return INTERRUPTED + stopped.signum


def _serve_locked(
    settings: Settings,
    requested: str,
    announce: Callable[[Endpoints], None],
    replicas: int | None,
    parent: int | None,
    parts: Sequence[str],
    lock: IO[str],
) -> int:
    GROUPS.keep_file(pid_file(settings.state_file))
    target: Target | None = None
    try:
        if parent is not None:
            watch_parent(parent)
        choice = choose(requested, settings)
        describe_holder(lock, f"target={choice.name}")  # auto resolved
        given = os.environ.get(REASON_ENV, "")  # why a parent (the runner) chose the target
        log.info(given if given.startswith(f"target={choice.name} ") else choice.reason)
        target = make_target(choice.name, settings, replicas, parts)
        request_file(settings.state_file).unlink(missing_ok=True)  # a predecessor's
        endpoints = target.up()
        started = started_at(os.getpid())  # tells this process from a later one with its pid
        identity = target.identity
        state = State(
            endpoints,
            os.getpid(),
            settings.namespace,
            parent,
            started=started,
            identity=identity,
            parts=target.parts,
        )
        write_state(settings.state_file, state)
        try:  # ready from here on: a stop signal is the normal end
            announce(endpoints)
            while True:  # build what notebooks ask for; keep the local replicas' restarts
                request = read_request(settings.state_file)
                if request is not None and request.id != state.request:
                    state = _build(target, state, request)
                    write_state(settings.state_file, state)
                records = target.records
                if records != state.replicas:
                    state = replace(state, replicas=records)
                    write_state(settings.state_file, state)
                time.sleep(0.1)
        except Shutdown as stopped:
            log.info("stopping the lab (%s) …", stopped)
            return 0
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)  # let teardown finish
        try:
            if target is not None:
                target.down()
        finally:
            stop_groups(GROUPS.snapshot())  # anything the target did not stop itself
            GROUPS.keep_file(None)
            state_now = read_state(settings.state_file)
            if state_now is not None and state_now.pid == os.getpid():
                settings.state_file.unlink()
                request_file(settings.state_file).unlink(missing_ok=True)


def _build(target: Target, state: State, request: BuildRequest) -> State:
    """Build what `request` asks on `target`; the state after it, with the request answered
    (and its error, when the build failed: the lab keeps serving what is built)."""
    log.info("building %s …", ", ".join(request.parts) or "nothing (removing every part)")
    error = None
    try:
        target.build(request.parts)
    except Exception as exc:
        log.exception("the build of %s failed", ", ".join(request.parts))
        error = str(exc)
    return replace(
        state, endpoints=target.endpoints, parts=target.parts, request=request.id, error=error
    )


@dataclass
class StackProcess:
    """`python -m lab up --target T --json` as a child process, from ready to torn down.

    Ready means: the state file names this child's pid (`lab up` writes it once every part
    answers). Its output goes to `log_path` (default: lab-up.log beside the state file).
    """

    requested: str
    settings: Settings
    log_path: Path | None = None
    environ: dict[str, str] | None = None  # its environment (None: this process's)
    lesson: int | None = None  # build what this lesson expects on entry (None: everything)
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
        self.spawn()
        return self.wait_ready()

    def spawn(self) -> None:
        """Start `lab up` without waiting for it (`wait_ready` does)."""
        self.log.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "lab", "up", "--target", self.requested, "--json"]
        argv += ["--state-file", str(self.settings.state_file), "--parent-pid", str(os.getpid())]
        argv += ["--namespace", self.settings.namespace]
        if self.settings.images_archive is not None:
            argv += ["--archive", str(self.settings.images_archive)]
        if self.lesson is not None:
            argv += ["--lesson", str(self.lesson)]
        environ = {
            **(os.environ if self.environ is None else self.environ),
            "PYTHONUNBUFFERED": "1",
        }
        self.process = ManagedProcess("lab up", argv, self.log, environ, self.settings.repo_root)
        self.process.start()

    def wait_ready(self) -> State:
        """Wait until the spawned `lab up` is ready; on any failure stop it and raise."""
        process = self.process
        if process is None:
            raise RuntimeError("wait_ready() before spawn()")

        def ready() -> State | None:
            process.ensure_running()
            state = read_state(self.settings.state_file)
            return state if state is not None and state.pid == process.pid else None

        try:
            self.state = poll(
                ready,
                what=_("the {target} lab to come up").format(target=self.requested),
                timeout=up_timeout(self.requested),
                interval=0.2,
                progress=False,
                diagnose=lambda: process.log_tail(20),
                next_step=_("Read {log}.").format(log=self.log),
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
