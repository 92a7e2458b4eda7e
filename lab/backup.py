"""Logical backups of the lab's PostgreSQL, a disaster, and the restore (lesson 08).

Three steps, the same on every target, each returning a `Step` (what ran, for how long, what it
said):

- `backup`: `pg_dump --format=custom` of the application database, written as `latest.dump`;
- `disaster`: `DROP TABLE items` — an operator's mistake, the most common reason for a restore;
- `restore`: `pg_restore --clean --if-exists --single-transaction` of `latest.dump`.

On kind and cluster each step is a Job made from the jobTemplate of the CronJob
`postgres-backup` (manifests/components/backup, applied by `apply`): the same hardened pod,
the dump on the claim `postgres-backup`, only the command differs. On local the same commands
run here, with the PostgreSQL client tools beside the lab server's binaries, against the lab's
real server (found by `lab.database.local_server`), the dump in a directory the caller gives.
"""

from __future__ import annotations

import copy
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.database import LabHandle, local_server
from lab.errors import LabError
from lab.i18n import _
from lab.waits import poll

CRONJOB = "postgres-backup"
DUMP = "latest.dump"
JOB_LABEL = "lab.ironclad/backup-step"  # every Job a step creates carries it (value: the step)
# What each step runs in the backup pod (`sh -c`; PG* variables name the server and the user).
COMMANDS = {
    "disaster": "psql --set=ON_ERROR_STOP=1 --command='DROP TABLE items'",
    "restore": 'pg_restore --clean --if-exists --single-transaction --dbname="$PGDATABASE" '
    f"/backup/{DUMP}",
}


@dataclass(frozen=True)
class Step:
    """One step: `action`, where it ran (`where`: a Job's name, or "local"), when it started
    (`started`, time.monotonic()), how long it took and what its command printed."""

    action: str
    where: str
    started: float
    seconds: float
    output: str


def apply(*, env: LabHandle) -> list[str]:
    """kind, cluster: apply the backup component (claim, CronJob, NetworkPolicies) into the
    lab's namespace; the objects applied. Local: nothing to apply (the dump goes to a folder)."""
    if not env.on_cluster:
        return []
    from lab import manifests  # kubectl kustomize: only on a cluster target

    objects = manifests.render("backup", env.settings, namespace=env.namespace)
    env.k8s.apply(objects)
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]


def backup(*, env: LabHandle, folder: Path, timeout: float = 300.0) -> Step:
    """Dump the application database (kind, cluster: to the claim; local: to `folder`)."""
    if env.on_cluster:
        return _job(env, "backup", None, timeout)
    server = local_server(env.settings.state_file)
    folder.mkdir(parents=True, exist_ok=True)
    partial, dump = folder / f".partial-{DUMP}", folder / DUMP
    step = _local(
        "backup",
        [str(server.bindir / "pg_dump"), "--format=custom", f"--file={partial}", server.dsn()],
        timeout,
    )
    partial.replace(dump)  # like the Job: a half-written dump is never latest.dump
    return step


def disaster(*, env: LabHandle, timeout: float = 300.0) -> Step:
    """Drop the items table (the data is gone; the backend answers 5xx for every item)."""
    if env.on_cluster:
        return _job(env, "disaster", COMMANDS["disaster"], timeout)
    server = local_server(env.settings.state_file)
    return _local(
        "disaster",
        [
            str(server.bindir / "psql"),
            "--set=ON_ERROR_STOP=1",
            "--command=DROP TABLE items",
            server.dsn(),
        ],
        timeout,
    )


def restore(*, env: LabHandle, folder: Path, timeout: float = 300.0) -> Step:
    """Restore `latest.dump` (kind, cluster: from the claim; local: from `folder`) in one
    transaction: all of it or nothing."""
    if env.on_cluster:
        return _job(env, "restore", COMMANDS["restore"], timeout)
    server = local_server(env.settings.state_file)
    dump = folder / DUMP
    if not dump.is_file():
        raise LabError(
            _("There is no dump at {dump}.").format(dump=dump),
            _("Take a backup first: backup(env=env)."),
        )
    return _local(
        "restore",
        [
            str(server.bindir / "pg_restore"),
            "--clean",
            "--if-exists",
            "--single-transaction",
            f"--dbname={server.dsn()}",
            str(dump),
        ],
        timeout,
    )


def dump_contents(*, env: LabHandle, folder: Path) -> list[str]:
    """Local: the table of contents of `latest.dump` (`pg_restore --list`), one entry a line
    ("TABLE DATA public items ..." is the rows). On kind the backup Job's log shows the file."""
    server = local_server(env.settings.state_file)
    listing = _local(
        "list", [str(server.bindir / "pg_restore"), "--list", str(folder / DUMP)], 60.0
    )
    return [line for line in listing.output.splitlines() if line and not line.startswith(";")]


def _local(action: str, argv: list[str], timeout: float) -> Step:
    """Run a PostgreSQL client tool to its end; LabError with its output when it fails."""
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(
            _("{action}: {tool} did not finish in {timeout} s.").format(
                action=action, tool=Path(argv[0]).name, timeout=f"{timeout:g}"
            ),
            _("Is the lab's PostgreSQL frozen or stopped? `ironclad-lab status`."),
        ) from exc
    if done.returncode != 0:
        raise LabError(
            _("{action}: {tool} failed (exit {code}): {output}").format(
                action=action,
                tool=Path(argv[0]).name,
                code=done.returncode,
                output=done.stderr.strip() or done.stdout.strip(),
            ),
            _(
                "Read the message above; the lab's PostgreSQL must be running (`ironclad-lab "
                "status`)."
            ),
        )
    return Step(action, "local", started, time.monotonic() - started, done.stdout + done.stderr)


def job_manifest(template: dict[str, Any], action: str, command: str | None) -> dict[str, Any]:
    """A Job for `action` from the CronJob `template`'s jobTemplate: the same pod, `command`
    (for `sh -c`) instead of the dump when given, a name unique to this second."""
    spec = copy.deepcopy(template["spec"]["jobTemplate"]["spec"])
    if command is not None:
        spec["template"]["spec"]["containers"][0]["args"] = [command]
    labels = {**spec["template"]["metadata"].get("labels", {}), JOB_LABEL: action}
    spec["template"]["metadata"]["labels"] = labels
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"postgres-{action}-{time.strftime('%H%M%S', time.gmtime())}",
            "labels": labels,
        },
        "spec": spec,
    }


def _job(env: LabHandle, action: str, command: str | None, timeout: float) -> Step:
    """Run `action` as a Job from the CronJob's template and wait until its pod has finished;
    LabError with the pod's log when it failed."""
    from lab import manifests

    rendered = manifests.render("backup", env.settings, namespace=env.namespace)
    job = job_manifest(manifests.find(rendered, "CronJob", CRONJOB), action, command)
    name = job["metadata"]["name"]
    started = time.monotonic()
    env.k8s.apply([job])

    def finished() -> tuple[str, str] | None:
        for pod in env.k8s.pods(f"job-name={name}"):
            if pod.phase in ("Succeeded", "Failed"):
                return pod.phase, pod.name
        return None

    phase, pod = poll(
        finished,
        what=_("Job {name} ({action}) to finish").format(name=name, action=action),
        timeout=timeout,
    )
    output = env.k8s.logs(pod)
    if phase != "Succeeded":
        raise LabError(
            _("{action}: Job {name} failed; its pod {pod} printed:\n{output}").format(
                action=action, name=name, pod=pod, output=output
            ),
            _("Fix what it says; `kubectl -n {namespace} describe job {name}` shows more.").format(
                namespace=env.namespace, name=name
            ),
        )
    return Step(action, f"Job/{name}", started, time.monotonic() - started, output)
