"""The `local` target: real PostgreSQL, N backend processes and Prometheus on loopback ports.

Over 400 lines on purpose: `LocalTarget` owns every process of one local stack, from the part
a lesson builds to the replica supervisor to teardown; what it starts and what `down()` stops
stay in one class so that a stop signal at any moment (tests/integration/lab/
test_lab_up_lifecycle.py) leaves nothing running. Its configuration writers (Prometheus,
Grafana, memory limits) are the small functions before the class.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.contract import JOB
from lab.errors import LabError, ToolMissingError
from lab.i18n import _, ngettext
from lab.identity import Identity
from lab.lessons import PARTS, check_parts, part_lesson
from lab.manifests import find, parse
from lab.net import LOOPBACK, free_port, get_json, http_ok, release, reserve
from lab.postgres import PostgresServer
from lab.procs import GROUPS, ManagedProcess, held, remove_tree
from lab.settings import Settings
from lab.targets.backoff import CrashBackOff
from lab.targets.base import Endpoints, ReplicaRecord
from lab.waits import poll

log = logging.getLogger(__name__)


def render_prometheus_config(template: Path, targets_file: Path) -> dict[str, Any]:
    """The local Prometheus config: rule files made absolute, the backend job on file_sd."""
    config: dict[str, Any] = yaml.safe_load(template.read_text()) or {}
    config["rule_files"] = [
        str((template.parent / rule).resolve()) for rule in config.get("rule_files", [])
    ]
    jobs = [job for job in config.get("scrape_configs", []) if job.get("job_name") == JOB]
    if not jobs:
        raise LabError(
            _("{template} has no scrape job named {job}.").format(template=template, job=repr(JOB)),
            _("Restore the template from the repository (git checkout manifests/)."),
        )
    for job in jobs:
        job.pop("static_configs", None)
        file_sd = (job.get("file_sd_configs") or [{}])[0]
        job["file_sd_configs"] = [{**file_sd, "files": [str(targets_file)]}]
    return config


def file_sd_groups(ports: list[int]) -> list[dict[str, Any]]:
    """One file_sd target group per replica, labelled like a pod so dashboards can group by it."""
    return [
        {"targets": [f"{LOOPBACK}:{port}"], "labels": {"pod": f"backend-{index}"}}
        for index, port in enumerate(ports)
    ]


def grafana_home(binary: str) -> Path | None:
    """Grafana's homepath (where conf/defaults.ini lives) for an installed grafana-server."""
    for home in (
        Path(binary).resolve().parents[1] / "share" / "grafana",
        Path("/usr/share/grafana"),
    ):
        if (home / "conf" / "defaults.ini").is_file():
            return home
    return None


def write_grafana_provisioning(manifests: Path, target: Path, prometheus_url: str) -> None:
    """The cluster's Grafana provisioning, pointed at the local Prometheus and dashboards."""
    source = manifests / "components" / "monitoring" / "grafana"
    datasources = yaml.safe_load((source / "datasources.yaml").read_text())
    for datasource in datasources["datasources"]:
        datasource["url"] = prometheus_url
    dashboards = yaml.safe_load((source / "dashboards.yaml").read_text())
    for provider in dashboards["providers"]:
        provider["options"]["path"] = str(manifests / "monitoring" / "dashboards")
    for kind, content in (("datasources", datasources), ("dashboards", dashboards)):
        (target / kind).mkdir(parents=True, exist_ok=True)
        (target / kind / "lab.yaml").write_text(yaml.safe_dump(content))
    for kind in ("plugins", "alerting", "notifiers"):
        (target / kind).mkdir(parents=True, exist_ok=True)


def backend_memory_limit(settings: Settings) -> int:
    """The backend container's `resources.limits.memory` in the manifests, in bytes: the
    number both targets teach (kind: the cgroup limit; local: see `address_space_limit`)."""
    from kubernetes.utils.quantity import parse_quantity  # heavy: imported when used

    objects = parse((settings.manifests / "base" / "backend.yaml").read_text())
    containers = find(objects, "Deployment", "backend")["spec"]["template"]["spec"]["containers"]
    limit = next(c for c in containers if c["name"] == "backend")["resources"]["limits"]["memory"]
    return int(parse_quantity(limit))  # type: ignore[no-untyped-call]


# RLIMIT_AS bounds the address space (every mapping: shared libraries, thread stacks, malloc
# arenas reserved but never touched), while a container's memory limit bounds what is resident
# (RSS + page cache), so RLIMIT_AS needs headroom over the container limit. Measured here for
# `python -m backend` with MALLOC_ARENA_MAX=2 (without it glibc may reserve 64 MiB of address
# space per thread arena, which would make the headroom unpredictable) and its 8 worker
# threads started before serving (backend/server.py): idle VSZ 244 MiB; after 60 concurrent
# /api/work requests and 300 pages of items, 245 MiB (nothing starts a thread later). The hog
# keeps 32 MiB beside it free to serve (backend/chaos.py SERVING_RESERVE) or exits 137, so with
# the 256 MiB limit + 192 MiB a hog dies beyond about 172 MiB (kind: about 183 MiB = 256 -
# RSS) and one below it is held by a replica that serves every request (issue 20 item 6:
# before, hogs of 230-255 MiB left replicas up, failing /api/work with "can't start new
# thread"). So a hog well beyond the limit (e.g. 2x) dies on both targets and one well below
# it (e.g. a quarter) survives on both.
ADDRESS_SPACE_HEADROOM = 192 * 1024 * 1024
MALLOC_ARENA_MAX = "2"


def address_space_limit(settings: Settings) -> int:
    """RLIMIT_AS for a local replica: the container's memory limit plus the headroom."""
    return backend_memory_limit(settings) + ADDRESS_SPACE_HEADROOM


@dataclass
class Replica:
    """One backend process on a fixed port; restarted on the same port when it dies."""

    process: ManagedProcess
    port: int
    exited_at: float | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    backoff: CrashBackOff = field(default_factory=CrashBackOff)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def record(self) -> ReplicaRecord:
        return ReplicaRecord(self.url, self.restarts, self.last_exit_code)


@dataclass
class LocalTarget:
    """Everything as plain processes in one temporary directory; `down()` removes all of it.

    Built in parts (`lab.lessons.PARTS`), each the process analog of a lesson's objects: the
    directory stands in for the namespace, environment variables for the Secret and ConfigMap,
    a PostgreSQL server for the StatefulSet, supervised processes for the Deployment, a
    Prometheus (and Grafana, where installed) for the monitoring; autoscaling, PDB and
    NetworkPolicy have no analog here. `up()` builds `wanted`; `build()` changes what is built.
    """

    settings: Settings
    replicas: int
    wanted: tuple[str, ...] = PARTS
    name: str = "local"
    identity: Identity | None = field(default=None, init=False)  # no Kubernetes here
    parts: tuple[str, ...] = field(default=(), init=False)  # built, in order
    root: Path | None = field(default=None, init=False)
    token: str = field(default="", init=False)
    postgres: PostgresServer | None = field(default=None, init=False)
    ports: list[int] = field(default_factory=list, init=False)
    backends: list[Replica] = field(default_factory=list, init=False)
    prometheus: ManagedProcess | None = field(default=None, init=False)
    prometheus_port: int = field(default=0, init=False)
    grafana: ManagedProcess | None = field(default=None, init=False)
    grafana_url: str | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _supervisor: threading.Thread | None = field(default=None, init=False, repr=False)

    def up(self) -> Endpoints:
        """Build the `wanted` parts; return once each is ready."""
        if self.replicas < 1:
            raise LabError(
                _("--replicas {replicas} leaves nothing to run.").format(replicas=self.replicas),
                _("Use at least one replica."),
            )
        with held():  # on record before anything can interrupt: a successor removes it
            self.root = Path(tempfile.mkdtemp(prefix="ironclad-lab-"))
            GROUPS.add_path(self.root)
        self.root.chmod(0o755)  # PostgreSQL runs as its own user below this directory
        try:
            self.build(self.wanted)
        except BaseException:
            self.down()
            raise
        return self.endpoints

    def build(self, parts: Sequence[str]) -> None:
        """Make exactly `parts` (a prefix of `PARTS`) built: extra ones are removed, newest
        first, then missing ones built in order. A part that fails is removed again."""
        parts = check_parts(parts)
        for part in reversed(self.parts):
            if part not in parts:
                self._remove(part)
                self.parts = self.parts[:-1]
        adding = [part for part in parts if part not in self.parts]
        if {"backend", "monitoring"} <= set(adding):  # Prometheus starts while PostgreSQL inits
            self.ports = [free_port() for _ in range(self.replicas)]
            self._start_prometheus()
        for part in adding:
            log.info("building %s (local: %s) …", part, part_lesson(part).local_analog or "-")
            try:
                self._add(part)
            except Exception:
                self._remove(part)
                raise
            self.parts = (*self.parts, part)

    @property
    def endpoints(self) -> Endpoints:
        """Where what is built answers ("" for a part not built yet)."""
        urls = [replica.url for replica in self.backends]
        return Endpoints(
            target=self.name,
            backend=urls[0] if urls else "",
            backends=urls,
            prometheus=self.prometheus_url if self.prometheus else "",
            grafana=self.grafana_url,
            chaos_token=self.token,
        )

    def _add(self, part: str) -> None:
        assert self.root is not None
        if part == "config":
            self.token = secrets.token_urlsafe(24)
        elif part == "postgres":
            self.postgres = PostgresServer(root=self.root / "postgres")
            self.postgres.init()
        elif part == "backend":
            self._start_backends()
        elif part == "monitoring":
            if self.prometheus is None:
                self._start_prometheus()
            poll(
                self._targets_up,
                what=ngettext(
                    "Prometheus scraping {count} replica",
                    "Prometheus scraping {count} replicas",
                    self.replicas,
                ).format(count=self.replicas),
                timeout=self.settings.ready_timeout,
                diagnose=self._targets_state,
            )
            self.grafana_url = self._start_grafana()

    def _remove(self, part: str) -> None:
        if part == "config":
            self.token = ""
        elif part == "postgres" and self.postgres is not None:
            self.postgres.destroy()
            self.postgres = None
        elif part == "backend":
            self._stop_supervisor()
            self._stop_processes([r.process for r in self.backends])
            with self._lock:
                for port in self.ports:
                    release(port)
                self.backends, self.ports = [], []
        elif part == "monitoring":
            self._stop_processes([p for p in (self.grafana, self.prometheus) if p])
            release(self.prometheus_port)
            self.grafana, self.prometheus, self.grafana_url = None, None, None

    def _start_backends(self) -> None:
        assert self.root is not None
        if self.postgres is None or not self.token:
            raise LabError(
                _("The backend needs PostgreSQL and its settings first."), _("Build them first.")
            )
        inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # POSTGRES_* win
        environ = {
            **inherited,
            **self.postgres.env(),
            "CHAOS_TOKEN": self.token,
            "HOST": LOOPBACK,
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            "DRAIN_DELAY_S": "0.5",
            "MALLOC_ARENA_MAX": MALLOC_ARENA_MAX,
        }
        memory_limit = address_space_limit(self.settings)
        self.ports = self.ports or [free_port() for _ in range(self.replicas)]
        for index, port in enumerate(self.ports):
            process = ManagedProcess(
                f"backend-{index}",
                [sys.executable, "-m", "backend"],
                self.root / f"backend-{index}.log",
                {**environ, "PORT": str(port)},
                cwd=self.settings.repo_root,
                memory_limit=memory_limit,
            )
            with self._lock:
                self.backends.append(Replica(process, port))  # on the list before it starts
            process.start()
        log.info("waiting for %d backend replicas …", self.replicas)
        poll(
            self._backends_ready,
            what=ngettext(
                "{count} backend replica ready", "{count} backend replicas ready", self.replicas
            ).format(count=self.replicas),
            timeout=self.settings.ready_timeout,
            diagnose=self._backend_logs,
        )
        self._stop = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, args=(self._stop,), name="lab-replicaset", daemon=True
        )
        self._supervisor.start()

    def _stop_supervisor(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None

    @staticmethod
    def _stop_processes(processes: list[ManagedProcess]) -> None:
        """SIGTERM them all at once (they drain together), then wait for each."""
        for process in processes:
            process.signal(signal.SIGTERM)
        for process in processes:
            process.stop()

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.prometheus_port}"

    def _start_prometheus(self) -> None:
        """Prometheus with file_sd over the replicas' ports (`self.ports`)."""
        assert self.root is not None
        binary = shutil.which("prometheus")
        if binary is None:
            raise ToolMissingError(
                "prometheus",
                _(
                    "Debian/Ubuntu: `sudo apt-get install prometheus`; conda: `conda install -c "
                    "conda-forge prometheus`"
                ),
            )
        template = self.settings.local_prometheus_config
        if not template.is_file():
            raise LabError(
                _("{template} is missing.").format(template=template),
                _("Run from a full checkout of the lab."),
            )
        targets = self.root / "prometheus-targets.json"
        targets.write_text(json.dumps(file_sd_groups(self.ports)))
        config = self.root / "prometheus.yml"
        config.write_text(yaml.safe_dump(render_prometheus_config(template, targets)))
        self.prometheus_port = free_port()
        self.prometheus = ManagedProcess(  # on the target before it starts: down() stops it
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.root / 'tsdb'}",
                f"--web.listen-address={LOOPBACK}:{self.prometheus_port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            self.root / "prometheus.log",
        )
        self.prometheus.start()

    def _start_grafana(self) -> str | None:
        """Grafana with the repository's provisioning, only where `grafana-server` is installed."""
        assert self.root is not None
        binary = shutil.which("grafana-server")
        home = grafana_home(binary) if binary else None
        if binary is None or home is None:
            return None
        provisioning = self.root / "grafana" / "provisioning"
        write_grafana_provisioning(self.settings.manifests, provisioning, self.prometheus_url)
        port = free_port()
        environ = {
            **os.environ,
            "GF_SERVER_HTTP_ADDR": LOOPBACK,
            "GF_SERVER_HTTP_PORT": str(port),
            "GF_PATHS_DATA": str(self.root / "grafana" / "data"),
            "GF_PATHS_LOGS": str(self.root / "grafana" / "logs"),
            "GF_PATHS_PLUGINS": str(self.root / "grafana" / "plugins"),
            "GF_PATHS_PROVISIONING": str(provisioning),
            "GF_AUTH_ANONYMOUS_ENABLED": "true",
            "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        }
        grafana = self.grafana = ManagedProcess(
            "grafana", [binary, "--homepath", str(home)], self.root / "grafana.log", environ
        )
        grafana.start()
        url = f"http://{LOOPBACK}:{port}"

        def healthy() -> bool:
            grafana.ensure_running()
            return http_ok(f"{url}/api/health")

        poll(
            healthy,
            what="Grafana",
            timeout=self.settings.ready_timeout,
            diagnose=lambda: grafana.log_tail(10),
        )
        return url

    def _backends_ready(self) -> bool:
        for replica in self.backends:
            replica.process.ensure_running()
        return all(http_ok(f"{r.url}/health/ready") for r in self.backends)

    def _backend_logs(self) -> str:
        return "\n".join(
            _("--- {name} (port {port}) log tail:\n{tail}").format(
                name=r.process.name, port=r.port, tail=r.process.log_tail(10)
            )
            for r in self.backends
        )

    def _targets_up(self) -> bool:
        assert self.prometheus is not None
        self.prometheus.ensure_running()
        data = get_json(f"{self.prometheus_url}/api/v1/targets?state=active")
        healthy = {
            t["scrapeUrl"]
            for t in data["data"]["activeTargets"]
            if t["labels"].get("job") == JOB and t["health"] == "up"
        }
        return all(any(f":{r.port}/" in url for url in healthy) for r in self.backends)

    def _targets_state(self) -> str:
        assert self.prometheus is not None
        try:
            data = get_json(f"{self.prometheus_url}/api/v1/targets?state=active")
        except OSError as exc:
            return f"Prometheus API: {exc}\n{self.prometheus.log_tail(10)}"
        return "\n".join(
            f"{t['scrapeUrl']}: {t['health']} {t['lastError']}"
            for t in data["data"]["activeTargets"]
        ) or _("no active targets")

    @property
    def records(self) -> tuple[ReplicaRecord, ...]:
        """Each replica's restarts and last exit code (`lab up` keeps them in the state file)."""
        with self._lock:
            return tuple(replica.record for replica in self.backends)

    def _supervise(self, stop: threading.Event) -> None:
        """Like a ReplicaSet and the kubelet: a replica that exits is started again on its port.

        One that stopped cleanly (exit code 0: SIGTERM, drained) is replaced at once, as a
        rolling update's new pod is; one that crashed (any other code) is restarted at once the
        first time and backed off after that (`lab.targets.backoff`: `LAB_RESTART_DELAY`,
        doubling), as the kubelet restarts a crashing container.
        """
        while not stop.wait(0.2):
            with self._lock:
                for replica in self.backends:
                    if stop.is_set() or replica.process.running():
                        continue
                    now = time.monotonic()
                    if replica.exited_at is None:
                        replica.exited_at = now
                        replica.last_exit_code = replica.process.returncode
                        reserve(replica.port, renew=True)  # its port waits for its restart
                        log.warning(
                            "%s exited with code %s; restarting it in %g s",
                            replica.process.name,
                            replica.last_exit_code,
                            self._restart_delay(replica),
                        )
                    if now - replica.exited_at >= self._restart_delay(replica):
                        if replica.last_exit_code != 0:
                            replica.backoff.restarted(replica.exited_at, now)
                        replica.process.stop()
                        replica.process.start()
                        replica.exited_at = None
                        replica.restarts += 1

    def _restart_delay(self, replica: Replica) -> float:
        """Seconds before `replica`, which just exited, is started again."""
        if replica.last_exit_code == 0 or replica.exited_at is None:
            return 0.0
        return replica.backoff.delay(replica.exited_at, self.settings.restart_delay)

    def down(self) -> None:
        """Stop every process and delete the temporary directory (safe to call twice)."""
        self._stop_supervisor()
        with self._lock:
            processes = [
                p for p in (self.grafana, self.prometheus, *(r.process for r in self.backends)) if p
            ]
        self._stop_processes(processes)  # all drain at once, then each is waited for
        with self._lock:
            self.grafana, self.prometheus, self.backends = None, None, []
        for port in (*self.ports, self.prometheus_port):  # a part never built: port 0
            release(port)
        if self.postgres is not None:
            self.postgres.destroy()
            self.postgres = None
        self.parts, self.token, self.grafana_url = (), "", None
        if self.root is not None:
            remove_tree(self.root)
            GROUPS.remove_path(self.root)
            self.root = None
