"""The stack built out of order, for real (lesson 03): a backend started before its database.

`lab.lessons.with_part` refuses to build a part before the ones it needs; this module shows
what that guard rail saves a learner from, where it is cheap to show:

- `backend_without_database`: one stray replica, the real `python -m backend` the local target
  runs, started with nowhere to find PostgreSQL (a loopback port nothing listens on) and a short
  start-up timeout; what it answered while it waited, how it ended, what it logged. It runs on
  every target (a process on the learner's machine) and is stopped by its pid on every path.
- `deploy_too_early` (kind, cluster): a copy of the target's backend Deployment, renamed so
  nothing selects it, applied before PostgreSQL exists (the container exits, the kubelet restarts
  it) or pointing at a Secret that does not exist (the container is never created); the pod's
  state, its events and log, then the Deployment deleted, on every path.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lab.backend_logs import records
from lab.contract import BACKEND
from lab.i18n import _
from lab.lessons import EXERCISE_LABEL
from lab.net import LOOPBACK, free_port, http_status, port_is_open
from lab.procs import ManagedProcess, remove_tree
from lab.waits import poll

if TYPE_CHECKING:
    from lab.k8s import Event, PodState
    from lab.session import Lab

EARLY = f"{BACKEND}-too-early"  # the stray replica's name (process, Deployment, its pods' app)
PATHS = ("/health/live", "/health/ready", "/api/items")  # what a probe and a client would ask
# backend/__main__.py's exit code when the server never started (PostgreSQL did not come)
NOT_STARTED = 3


def log_frame(lines: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """A backend's JSON log `lines` (`lab.backend_logs.records`), one row per line: level,
    logger and the message's first line (a traceback's first line only), repeats of a line in
    a row counted (`times`) instead of shown."""
    rows: list[dict[str, object]] = []
    for line in lines:
        message = (str(line.get("msg", "")).splitlines() or [""])[0]
        row = {"level": line.get("level"), "logger": line.get("logger"), "msg": message}
        if rows and {k: rows[-1][k] for k in row} == row:
            rows[-1]["times"] = int(str(rows[-1]["times"])) + 1
        else:
            rows.append({**row, "times": 1})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class EarlyBackend:
    """What a replica started without its database did: where it looked for PostgreSQL,
    `samples` (every quarter second: seconds since the start, whether its port listened, the
    status of each of `PATHS` or None for no answer), its exit code and when, its log."""

    database: str
    samples: tuple[dict[str, Any], ...]
    exit_code: int | None
    exited_after_s: float | None
    log: tuple[dict[str, object], ...]

    def samples_frame(self) -> pd.DataFrame:
        """`samples` as a table, one row per look."""
        return pd.DataFrame(list(self.samples))

    def log_frame(self) -> pd.DataFrame:
        """Its log (`log_frame`)."""
        return log_frame(self.log)

    def answered(self) -> bool:
        """Whether any of `PATHS` ever got an HTTP answer."""
        return any(sample[path] is not None for sample in self.samples for path in PATHS)


def backend_without_database(
    *, env: Lab, startup_timeout_s: float = 3.0, timeout: float = 60.0
) -> EarlyBackend:
    """Start one backend replica whose PostgreSQL is not there (POSTGRES_HOST/PORT: a loopback
    port nothing listens on), `DB_STARTUP_TIMEOUT_S=startup_timeout_s`; look at it every
    quarter second until it exits (at most `timeout` s), then stop it (by its pid, on every
    path, Ctrl-C included) and return what it did."""
    folder = Path(tempfile.mkdtemp(prefix=f"ironclad-{EARLY}-"))
    port, nowhere = free_port(), free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "HOST": LOOPBACK,
        "PORT": str(port),
        "POSTGRES_HOST": LOOPBACK,
        "POSTGRES_PORT": str(nowhere),
        "DB_STARTUP_TIMEOUT_S": f"{startup_timeout_s:g}",
    }
    replica = ManagedProcess(
        EARLY,
        [sys.executable, "-m", "backend"],
        folder / f"{EARLY}.log",
        environ,
        cwd=env.settings.repo_root,
    )
    samples: list[dict[str, Any]] = []
    started = time.monotonic()

    def look() -> bool:
        samples.append(
            {
                "t (s)": round(time.monotonic() - started, 2),
                "listening": port_is_open(port),
                **{path: http_status(f"http://{LOOPBACK}:{port}{path}", 1.0) for path in PATHS},
            }
        )
        return not replica.running()

    try:
        replica.start()
        poll(
            look,
            what=_("the replica started without its database ({name}) to give up").format(
                name=EARLY
            ),
            timeout=timeout,
            interval=0.25,
            progress=False,
            diagnose=lambda: replica.log_tail(5),
        )
        exited_after = time.monotonic() - started
        exit_code = replica.stop()
        log = records(replica.log_path.read_text(errors="replace").splitlines(), EARLY)
    finally:
        # SIGTERM: a replica still waiting for PostgreSQL stops at once (exit 143). The SIGKILL
        # after ManagedProcess.stop's timeout stays as every process's safety net, never the plan.
        replica.stop()
        remove_tree(folder)
    return EarlyBackend(
        f"{LOOPBACK}:{nowhere}", tuple(samples), exit_code, exited_after, tuple(log)
    )


@dataclass(frozen=True)
class EarlyPod:
    """A pod of the too-early Deployment as it was seen: its state (`PodState`: phase, ready,
    restarts, waiting reason, last exit code), its events and the last lines of its log (of
    the run before its restart; "" when its container never ran)."""

    pod: PodState
    events: tuple[Event, ...]
    log: str

    def events_frame(self) -> pd.DataFrame:
        """Its events, one row each."""
        from lab.k8s.frames import events_frame

        return events_frame(self.events)

    def log_frame(self) -> pd.DataFrame:
        """Its log (`log_frame`)."""
        return log_frame(records(self.log.splitlines(), self.pod.name))


def too_early_deployment(
    rendered: list[dict[str, Any]], missing_ref: str | None, startup_timeout_s: float
) -> dict[str, Any]:
    """The backend Deployment of `rendered` (a target's render), renamed `EARLY` with its own
    app label (no Service, HPA, PDB or Prometheus selects it), one replica, labelled as a
    lesson's run-time object (`reset --to N` removes one a dead kernel left), a start-up
    timeout of `startup_timeout_s`; with `missing_ref` (the name of a Secret that does not
    exist), its PostgreSQL password read from that Secret."""
    from lab.manifests import find

    deployment = copy.deepcopy(find(rendered, "Deployment", BACKEND))
    labels = {"app": EARLY}
    deployment["metadata"] = {
        "name": EARLY,
        "namespace": deployment["metadata"].get("namespace"),
        "labels": {**labels, EXERCISE_LABEL: "03-order"},
    }
    spec = deployment["spec"]
    spec["replicas"] = 1
    spec["selector"] = {"matchLabels": labels}
    template = spec["template"]
    template["metadata"] = {"labels": labels}  # no prometheus.io annotations: nothing scrapes it
    pod = template["spec"]
    pod.pop("topologySpreadConstraints", None)  # they select the real backend's pods
    (container,) = [c for c in pod["containers"] if c["name"] == BACKEND]
    for variable in container["env"]:
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if missing_ref is not None and variable["name"] == "POSTGRES_PASSWORD" and ref:
            ref["name"] = missing_ref
    container["env"].append({"name": "DB_STARTUP_TIMEOUT_S", "value": f"{startup_timeout_s:g}"})
    return deployment


def deploy_too_early(
    *,
    env: Lab,
    missing_ref: str | None = None,
    startup_timeout_s: float = 5.0,
    timeout: float = 300.0,
) -> EarlyPod:
    """kind, cluster: apply `too_early_deployment` of the target's backend (the lab's image),
    wait until its pod shows the failure — without `missing_ref`: its container exited
    (code 3, never started) and was restarted; with it: CreateContainerConfigError and the
    kubelet's Warning event — read its state, events and log (of the run before the restart),
    and delete the Deployment (on every path, its pods waited out)."""
    from lab import manifests
    from lab.targets import spec

    overlay = spec(env.target).overlay
    assert overlay is not None  # on_cluster: a target that applies manifests
    image = env.identity.image if env.identity is not None else None
    rendered = manifests.render(overlay, env.settings, namespace=env.namespace, image=image)
    deployment = too_early_deployment(rendered, missing_ref, startup_timeout_s)
    selector = f"app={EARLY}"

    def about(pod: PodState) -> tuple[Event, ...]:
        return tuple(e for e in env.k8s.events(limit=200) if e.object == f"Pod/{pod.name}")

    def failed() -> PodState | None:
        for pod in env.k8s.pods(selector):
            if missing_ref is None and pod.restarts >= 1 and pod.last_exit_code is not None:
                return pod
            # the kubelet records its event apart from the pod's status: wait for both
            if pod.detail == "CreateContainerConfigError" and any(
                e.type == "Warning" for e in about(pod)
            ):
                return pod
        return None

    try:
        env.k8s.apply([deployment], timeout=timeout)
        pod = poll(
            failed,
            what=(
                _("the pod of {name} to fail (Secret {secret} missing)")
                if missing_ref
                else _("the pod of {name} to fail (no PostgreSQL)")
            ).format(name=EARLY, secret=missing_ref),
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: env.k8s.diagnose(selector),
        )
        events = about(pod)
        log = "" if missing_ref else env.k8s.logs(pod.name, tail=20, previous=True)
    finally:
        env.k8s.delete([deployment], timeout=timeout)
    return EarlyPod(pod, events, log)
