"""Real local processes: managed child processes, their process groups, port owners.

Used by the `local` target and by the integration tests, so both exercise the same code.
Every process is started in its own session (process group) so that stopping it also stops
anything it spawned, and is on record (`GROUPS`, optionally a pid file) from its first moment:
`lab up` holds stop signals while a child starts (`held`), so an interrupt never leaves one
unrecorded. Nothing here sleeps blindly, every wait polls a condition with a deadline.

Over 400 lines on purpose: process groups, the pid file that outlives a SIGKILL, signal holding
and `ManagedProcess` are one job, owning every child from its first moment; apart, each would
need the others' internals. A throwaway PostgreSQL server (itself a ManagedProcess) is
`lab.postgres`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import psutil

from lab.errors import LabError, ProcessFailedError
from lab.i18n import _
from lab.waits import poll

log = logging.getLogger(__name__)


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    on_timeout: Callable[[], str] | None = None,
) -> None:
    """Poll `condition` until it is true; raise LabTimeoutError naming `what` after `timeout` s.

    `lab.waits.poll` without the progress bar: for waits too short or too internal to show.
    """
    poll(
        condition,
        what=what,
        timeout=timeout,
        interval=interval,
        diagnose=on_timeout,
        progress=False,
    )


def listener_pid(url: str) -> int:
    """Pid of the local process listening on `url`'s port (e.g. to kill one replica on purpose)."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for conn in psutil.net_connections(kind="tcp"):
        address = conn.laddr
        if conn.status == psutil.CONN_LISTEN and address and address.port == port and conn.pid:
            return int(conn.pid)
    raise LabError(
        _("Nothing listens on {url}.").format(url=url),
        _("Is the local lab running? lab.connect()."),
    )


# --- owning children: stop signals held while a child is started, groups on record -------

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# PostgreSQL's shutdown modes, as signals to the postmaster (what `pg_ctl stop -m` sends;
# lab.postgres stops its server with them): `raise_on_stop_signals` un-ignores them.
SHUTDOWN_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class Shutdown(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM/SIGHUP once `raise_on_stop_signals()` ran."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@dataclass
class _Hold:
    depth: int = 0  # main thread only: signal handlers run there
    pending: int | None = None


_HOLD = _Hold()


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    if _HOLD.depth:
        _HOLD.pending = signum  # raised when the outermost `held()` ends
    else:
        raise Shutdown(signum)


def raise_on_stop_signals() -> None:
    """SIGINT/SIGTERM/SIGHUP raise `Shutdown` in the main thread, except inside `held()`,
    where they wait for it to end. Call from the main thread (`lab up` does).

    Also un-ignores the signals the lab stops its children with. A job started with `&` by a
    script (CI, a test runner, an instructor's loop) ignores SIGINT and SIGQUIT, and children
    inherit an ignored signal across exec: a postmaster that has not installed its handlers
    yet then drops the SIGQUIT of an immediate stop, starts up after all, and its owner
    waits for it (one interrupted `lab up` in eight hung that way, leaving PostgreSQL)."""
    _HOLD.pending = None
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_stop_signal)
    for signum in set(SHUTDOWN_SIGNALS.values()) - set(STOP_SIGNALS):
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold stop signals (as installed by `raise_on_stop_signals`) in the main thread until
    the block ends, so that starting a child and recording it is never split by one."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python delivers signals to the main thread only
        return
    _HOLD.depth += 1
    try:
        yield
    finally:
        _HOLD.depth -= 1
        if _HOLD.depth == 0 and _HOLD.pending is not None:
            signum, _HOLD.pending = _HOLD.pending, None
            raise Shutdown(signum)


@dataclass(frozen=True)
class Group:
    """A process group this process started: its leader's pid (= pgid) and start time."""

    pgid: int
    name: str
    created: float  # psutil create_time of the leader: tells a reused pid apart


class ProcessGroups:
    """Every process group this process started and has not stopped, plus the directories it
    made; mirrored to a pid file (`keep_file`) so that, after a SIGKILL of this process, the
    next one can stop them (`stop_leftovers`)."""

    def __init__(self) -> None:
        self._groups: dict[int, Group] = {}
        self._paths: list[str] = []
        self._lock = threading.Lock()
        self.pid_file: Path | None = None

    def keep_file(self, path: Path | None) -> None:
        """Mirror the record to `path` from now on (None: stop, and delete the file)."""
        with self._lock:
            old, self.pid_file = self.pid_file, path
            if path is None and old is not None:
                old.unlink(missing_ok=True)
            self._write()

    def add(self, name: str, pid: int) -> None:
        created = started_at(pid)
        if created is None:  # already gone (a zombie still has one): nothing to own
            return
        with self._lock:
            self._groups[pid] = Group(pid, name, created)
            self._write()

    def remove(self, pid: int) -> None:
        with self._lock:
            if self._groups.pop(pid, None) is not None:
                self._write()

    def snapshot(self) -> list[Group]:
        with self._lock:
            return list(self._groups.values())

    def add_path(self, path: Path) -> None:
        with self._lock:
            self._paths.append(str(path))
            self._write()

    def remove_path(self, path: Path) -> None:
        with self._lock:
            if str(path) in self._paths:
                self._paths.remove(str(path))
                self._write()

    def _write(self) -> None:
        if self.pid_file is None:
            return
        data = {
            "owner": os.getpid(),
            "groups": [asdict(group) for group in self._groups.values()],
            "paths": self._paths,
        }
        partial = self.pid_file.with_name(f".{self.pid_file.name}.{threading.get_ident()}")
        partial.write_text(json.dumps(data, indent=2) + "\n")
        partial.replace(self.pid_file)


GROUPS = ProcessGroups()  # this process's children (one per process: signals are too)


def started_at(pid: int) -> float | None:
    """The start time of process `pid` (psutil create_time), or None when there is none."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None


def same_start(process: psutil.Process, started: float) -> bool:
    """True when `process` started at `started`: the recorded process, not a reused pid."""
    return abs(process.create_time() - started) <= 0.01


def group_members(group: Group) -> list[psutil.Process]:
    """The live processes of `group`, if it is still the one recorded: a live leader must have
    the recorded start time (else the pid was reused and the group is someone else's); with the
    leader gone the group id cannot be reused while members live, so they are its members."""
    with contextlib.suppress(psutil.NoSuchProcess):
        if not same_start(psutil.Process(group.pgid), group.created):
            return []
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
            if os.getpgid(process.pid) == group.pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def stop_groups(groups: Sequence[Group], timeout: float = 10.0) -> list[Group]:
    """SIGTERM every live recorded group, SIGKILL what is left after `timeout` s; return the
    groups that had live members."""
    live = [g for g in groups if group_members(g)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group.pgid, sig)
        with contextlib.suppress(LabError):
            wait_until(
                lambda: not any(group_members(g) for g in live),
                timeout=timeout,
                what=_("leftover processes to stop"),
                interval=0.1,
            )
        if not any(group_members(g) for g in live):
            break
    return live


def read_pid_file(pid_file: Path) -> tuple[list[Group], list[Path]]:
    """The process groups and directories recorded in `pid_file` ([], [] when there is none
    or it is half written: its owner was killed in the middle of a write)."""
    try:
        data = json.loads(pid_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return [], []
    groups = [Group(int(g["pgid"]), str(g["name"]), float(g["created"])) for g in data["groups"]]
    return groups, [Path(p) for p in data.get("paths", [])]


def live_leftovers(pid_file: Path) -> list[Group]:
    """The groups recorded in `pid_file` that still run (what `stop_leftovers` would stop)."""
    return [group for group in read_pid_file(pid_file)[0] if group_members(group)]


def stop_leftovers(pid_file: Path) -> list[str]:
    """Stop what a previous owner of `pid_file` left running (it was killed before its
    teardown): its process groups that still belong to it, and its directories. Returns one
    line per thing stopped or removed; deletes the file. The caller holds the lock the owner
    held while it ran (`lab.stack.exclusive`), so the owner is gone, whatever its pid is now."""
    groups, paths = read_pid_file(pid_file)
    done = [f"{g.name} (process group {g.pgid})" for g in stop_groups(groups)]
    for path in paths:
        if path.name.startswith("ironclad-") and path.exists():  # only what the lab makes
            remove_tree(path)
            done.append(f"directory {path}")
    pid_file.unlink(missing_ok=True)
    return done


def pid_alive(pid: int, started: float | None = None) -> bool:
    """True when `pid` is a live process (zombies count as gone) and, given `started` (its
    psutil create_time when it was recorded), still that process rather than a reused pid."""
    try:
        process = psutil.Process(pid)
        if started is not None and not same_start(process, started):
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def open_private_log(path: Path) -> IO[bytes]:
    """Open `path` for appending, readable by its owner only (0600, also when it existed):
    what a child prints may be a secret (`lab up` prints the chaos token). A child running as
    another user writes through the descriptor it inherits, so it needs no access itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def remove_tree(path: Path, timeout: float = 30.0) -> bool:
    """Delete the directory `path`, again while something still writes into it: a process
    that was just SIGKILLed may finish a write (initdb's `postgres --boot` on a busy machine)
    after a first pass, which then leaves the directory behind. False (and a warning) when it
    is still there after `timeout` s; teardown goes on either way."""

    def removed() -> bool:
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()

    try:
        wait_until(
            removed, timeout=timeout, what=_("{path} to be removed").format(path=path), interval=0.2
        )
    except LabError:
        log.warning("Could not remove %s within %.0f s; delete it by hand.", path, timeout)
        return False
    return True


@dataclass
class ManagedProcess:
    """A child process in its own process group (on record in `GROUPS` from its first
    moment), its output captured in a log file, optionally as another user (root only) and
    under an address-space limit (`memory_limit` bytes, RLIMIT_AS: Linux)."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    memory_limit: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)

    def start(self) -> ManagedProcess:
        """Start it (again, for a supervisor's restart). A stop signal that arrives meanwhile
        surfaces when `held()` ends, after the child exists: it is stopped before that goes on
        (an initdb left running re-created the directory teardown had just removed)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        as_user: dict[str, Any] = {}
        if self.user is not None:
            as_user = {"user": self.user, "group": self.user, "extra_groups": []}
        self._stopped = False
        with open_private_log(self.log_path) as log, held():
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
                **as_user,
            )
            GROUPS.add(self.name, self.popen.pid)
            if self.memory_limit is not None:
                # Right after exec, before the program allocates more than its interpreter:
                # (preexec_fn would be earlier, but is unsafe in a process with threads).
                limit = (self.memory_limit, self.memory_limit)
                resource.prlimit(self.popen.pid, resource.RLIMIT_AS, limit)

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ProcessFailedError(self.name, _("was never started"), self.log_path)
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal), else None."""
        return None if self.popen is None else self.popen.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def ensure_running(self) -> None:
        """Raise ProcessFailedError (with the log tail) if the process has exited."""
        if not self.running():
            code = self.popen.returncode if self.popen else None
            raise ProcessFailedError(
                self.name, _("exited with code {code}").format(code=code), self.log_path
            )

    def signal(self, signum: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def run(self) -> int:
        """Start it and wait for its exit; stopped (with its group) on every path, also when a
        stop signal lands between the start and the wait. Returns the exit code."""
        try:
            self.start()
            assert self.popen is not None
            self.popen.wait()
        finally:
            self.stop()  # its group too (stragglers), and off the record
        return self.popen.returncode

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout` s; return the exit code.
        Once stopped, a second call only returns the code (its pgid may belong to another
        group by then)."""
        if self.popen is None or self._stopped:
            return None if self.popen is None else self.popen.returncode
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(5)
        # Kill anything left in the group (children that ignored SIGTERM), and wait until it is
        # gone: until then it may still write to a directory the caller is about to delete
        # (initdb's `postgres --single`, interrupted, left a data directory behind that way).
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # no process left in the group
        else:
            left = Group(self.popen.pid, self.name, created=0.0)  # the leader is reaped
            with contextlib.suppress(LabError):  # 30 s: a process in uninterruptible I/O
                wait_until(lambda: not group_members(left), timeout=30, what=self.name)
        GROUPS.remove(self.popen.pid)
        self._stopped = True
        return self.popen.returncode
