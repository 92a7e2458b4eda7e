"""The lab's PostgreSQL, taken away and given back, as lessons break it on purpose.

On kind and cluster the StatefulSet `postgres` is scaled to 0 and back to 1 by server-side
apply of the rendered object with another `replicas` (what editing the manifest and applying it
does; the Role already allows it). The claim stays, so the data comes back with the pod.

On local `lab up` owns the PostgreSQL server process, so a notebook cannot stop and restart it
(a server the kernel started would outlive the lab's teardown). Its process analog freezes the
server instead — SIGSTOP to the postmaster and every worker, SIGCONT to thaw them. To a client
a frozen server is a database behind a dead network: connections are neither accepted nor
refused, and every call waits for its timeout (kind's scaled-down Service refuses at once; the
backend's pool still waits `DB_TIMEOUT_S` for a connection in both cases).

Actions take keyword arguments and return what they touched (one dict), in the style of
`lab.chaos`.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil

from lab.errors import LabError
from lab.i18n import _, ngettext
from lab.procs import Group, group_members, read_pid_file
from lab.stack import pid_file
from lab.waits import poll

if TYPE_CHECKING:
    from lab.k8s import NamespaceClient
    from lab.settings import Settings

STATEFULSET = "postgres"
PODS = "app=postgres"
SERVER_GROUP = "postgres"  # the name `lab up` records the local server's process group under


class LabHandle(Protocol):
    """What these actions need of `lab.connect()`'s handle (`lab.session.Lab`)."""

    namespace: str
    settings: Settings

    @property
    def target(self) -> str: ...

    @property
    def on_cluster(self) -> bool: ...

    @property
    def k8s(self) -> NamespaceClient: ...


@dataclass(frozen=True)
class LocalServer:
    """The local target's PostgreSQL as the kernel finds it: its process group (from the
    running lab's pid file) and, from the postmaster's command line, where it listens."""

    group: Group
    datadir: Path
    port: int
    socket_dir: Path
    bindir: Path

    def processes(self) -> list[psutil.Process]:
        """The postmaster and every worker (each worker leads a process group of its own)."""
        leaders = group_members(self.group)
        return [*leaders, *(c for p in leaders for c in p.children(recursive=True))]

    def dsn(self, database: str = "ironclad") -> str:
        """A superuser connection over the server's socket (local trust authentication)."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"


def local_server(state_file: Path) -> LocalServer:
    """The PostgreSQL server of the local lab whose state file is `state_file`."""
    groups, _paths = read_pid_file(pid_file(state_file))
    for group in groups:
        if group.name != SERVER_GROUP:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            argv = psutil.Process(group.pgid).cmdline()
            if group_members(group) and "-D" in argv:
                return LocalServer(
                    group,
                    Path(_option(argv, "-D")),
                    int(_option(argv, "-p")),
                    Path(_option(argv, "-k")),
                    Path(argv[0]).parent,
                )
    raise LabError(
        _("The local lab's PostgreSQL server is not running (none in {pid_file}).").format(
            pid_file=pid_file(state_file)
        ),
        _(
            "Is the lab up? `ironclad-lab status`; a lab of an earlier lesson may not have built "
            "PostgreSQL yet: lab.connect(lesson=N) builds what lesson N needs."
        ),
    )


def _option(argv: Sequence[str], flag: str) -> str:
    return argv[list(argv).index(flag) + 1]


def take_down(*, env: LabHandle, timeout: float = 300.0) -> dict[str, Any]:
    """Make PostgreSQL unavailable: scale the StatefulSet to 0 and wait until its pod is gone
    (kind, cluster), or freeze the local server's processes. Returns what it touched."""
    started = time.monotonic()
    if env.on_cluster:
        env.k8s.apply([_scaled(env, 0)])
        poll(
            lambda: not env.k8s.pods(PODS),
            what=_("the StatefulSet {name} to have no pod").format(name=STATEFULSET),
            timeout=timeout,
            interval=0.5,
        )
        touched = _("StatefulSet/{name} scaled to 0").format(name=STATEFULSET)
    else:
        server = local_server(env.settings.state_file)
        processes = server.processes()
        _signal(processes, signal.SIGSTOP)
        touched = ngettext(
            "PostgreSQL (pid {pid}, {count} process) frozen",
            "PostgreSQL (pid {pid}, {count} processes) frozen",
            len(processes),
        ).format(pid=server.group.pgid, count=len(processes))
    return {"action": "take down", "touched": touched, "seconds": time.monotonic() - started}


def bring_back(*, env: LabHandle, timeout: float = 300.0) -> dict[str, Any]:
    """Undo `take_down`: scale the StatefulSet back to 1 and wait until postgres-0 is ready, or
    thaw the local server. Returns what it touched. Safe to call when nothing was taken down
    (a rollback always runs)."""
    started = time.monotonic()
    if env.on_cluster:
        env.k8s.apply([_scaled(env, 1)])
        env.k8s.wait_rollout(STATEFULSET, kind="StatefulSet", timeout=timeout)
        touched = _("StatefulSet/{name} scaled to 1, postgres-0 ready").format(name=STATEFULSET)
    else:
        server = local_server(env.settings.state_file)
        processes = server.processes()
        _signal(reversed(processes), signal.SIGCONT)
        touched = ngettext(
            "PostgreSQL (pid {pid}, {count} process) thawed",
            "PostgreSQL (pid {pid}, {count} processes) thawed",
            len(processes),
        ).format(pid=server.group.pgid, count=len(processes))
    return {"action": "bring back", "touched": touched, "seconds": time.monotonic() - started}


def _scaled(env: LabHandle, replicas: int) -> dict[str, Any]:
    """The StatefulSet as `lab up` applies it, with `replicas` replicas."""
    from lab import manifests  # kubectl kustomize: only on a cluster target
    from lab.targets import spec

    overlay = spec(env.target).overlay
    assert overlay is not None  # on_cluster: a target that applies manifests
    rendered = manifests.render(overlay, env.settings, namespace=env.namespace)
    statefulset = copy.deepcopy(manifests.find(rendered, "StatefulSet", STATEFULSET))
    statefulset["spec"]["replicas"] = replicas
    return statefulset


def _signal(processes: Sequence[psutil.Process] | Any, signum: int) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
