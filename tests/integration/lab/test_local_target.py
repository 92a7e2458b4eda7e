"""The local target for real: PostgreSQL, backend replicas and Prometheus, then nothing left.

Covers `LocalTarget` in-process, `python -m lab up --json` as a subprocess (SIGTERM), and
`lab.connect()` / `lab.shutdown()` starting and stopping that subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from lab.chaos import BackendChaos
from lab.contract import JOB
from lab.errors import LabError
from lab.manifests import find, render
from lab.net import get_json, http_ok, port_is_open
from lab.procs import listener_pid
from lab.session import connect, shutdown
from lab.settings import Settings
from lab.stack import read_state
from lab.targets import Endpoints, ReplicaRecord
from lab.targets.local import ADDRESS_SPACE_HEADROOM, LocalTarget, backend_memory_limit
from lab.waits import poll

REPO = Path(__file__).resolve().parents[3]
SETTINGS = Settings(repo_root=REPO, restart_delay=0.5, ready_timeout=60)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]


@dataclass(frozen=True)
class Footprint:
    """What a running stack holds: processes, listening ports and its temporary directory."""

    pids: frozenset[int]
    ports: frozenset[int]
    root: Path


def footprint(endpoints: Endpoints, parent: psutil.Process) -> Footprint:
    """What the stack under `parent` holds. When `parent` is this test process, only the children
    that serve the stack's endpoints count (plus, below, everything in its temporary directory):
    this process also owns session-wide servers of other tests (a PostgreSQL, a lab)."""
    ports = {int(url.rsplit(":", 1)[1]) for url in [*endpoints.backends, endpoints.prometheus]}
    children = parent.children(recursive=True)
    if parent.pid == os.getpid():
        listening = psutil.net_connections("tcp")
        serving = {c.pid for c in listening if c.status == "LISTEN" and c.laddr.port in ports}
        children = [c for c in children if c.pid in serving]
    tsdb = next(
        arg
        for child in children
        if "prometheus" in child.name()
        for arg in child.cmdline()
        if arg.startswith("--storage.tsdb.path=")
    )
    root = Path(tsdb.split("=", 1)[1]).parent
    postgres_port = int((root / "postgres" / "data" / "postmaster.pid").read_text().splitlines()[3])
    pg_pids = {
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if str(root) in " ".join(p.info["cmdline"] or [])
    }
    return Footprint(
        frozenset({c.pid for c in children} | pg_pids), frozenset(ports | {postgres_port}), root
    )


def assert_nothing_left(left: Footprint) -> None:
    alive = [
        pid
        for pid in left.pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == []
    assert [port for port in left.ports if port_is_open(port)] == []
    assert not left.root.exists()


def up_series(prometheus: str) -> list[dict[str, object]]:
    data = get_json(f"{prometheus}/api/v1/query?query=up%7Bjob%3D%22{JOB}%22%7D")
    return list(data["data"]["result"])


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalTarget, Endpoints, Footprint]]:
    target = LocalTarget(SETTINGS, replicas=3)
    endpoints = target.up()
    try:
        yield target, endpoints, footprint(endpoints, psutil.Process())
    finally:
        target.down()


def test_every_replica_is_ready_on_its_own_loopback_port(
    stack: tuple[LocalTarget, Endpoints, Footprint],
) -> None:
    _, endpoints, _ = stack
    assert len(set(endpoints.backends)) == 3
    assert endpoints.backend in endpoints.backends
    assert all(url.startswith("http://127.0.0.1:") for url in endpoints.backends)
    assert all(http_ok(f"{url}/health/ready") for url in endpoints.backends)
    assert endpoints.grafana is None
    assert len(endpoints.chaos_token) >= 32


def test_prometheus_sees_every_replica_up(stack: tuple[LocalTarget, Endpoints, Footprint]) -> None:
    _, endpoints, _ = stack
    series = poll(
        lambda: (s := up_series(endpoints.prometheus)) and len(s) == 3 and s,
        what="3 up series",
        timeout=20,
        progress=False,
    )
    assert sorted(str(s["metric"]["instance"]) for s in series) == sorted(  # type: ignore[index]
        url.removeprefix("http://") for url in endpoints.backends
    )
    assert [s["value"][1] for s in series] == ["1", "1", "1"]  # type: ignore[index]
    assert {s["metric"]["pod"] for s in series} == {  # type: ignore[index]
        "backend-0",
        "backend-1",
        "backend-2",
    }


def test_the_chaos_token_is_the_one_the_replicas_accept(
    stack: tuple[LocalTarget, Endpoints, Footprint],
) -> None:
    _, endpoints, _ = stack
    import urllib.error
    import urllib.request

    def chaos_status(token: str) -> int:
        request = urllib.request.Request(
            f"{endpoints.backend}/api/chaos/disable",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert chaos_status(endpoints.chaos_token) == 200
    assert chaos_status("wrong") in (401, 403)


def test_a_killed_replica_is_restarted_on_the_same_port(
    stack: tuple[LocalTarget, Endpoints, Footprint],
) -> None:
    target, endpoints, _ = stack
    victim = target.backends[1]
    old_pid = listener_pid(endpoints.backends[1])
    assert old_pid == victim.process.pid
    os.kill(old_pid, signal.SIGKILL)
    poll(
        lambda: victim.restarts == 1 and http_ok(f"{victim.url}/health/ready"),
        what="the killed replica back",
        timeout=30,
        progress=False,
    )
    assert victim.process.pid != old_pid
    assert victim.url == endpoints.backends[1]


def test_a_clean_exit_and_a_first_crash_restart_at_once_a_second_crash_is_backed_off(
    stack: tuple[LocalTarget, Endpoints, Footprint],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rolling update's new pod starts without delay, and so does a container after its first
    crash (the kubelet's first restart); a crash after that waits out the back-off
    (CrashLoopBackOff). With an hour of back-off, the SIGTERMed replica (drained, exit 0) and
    the first SIGKILL are back at once, the second SIGKILL is scheduled an hour out; then the
    module's back-off applies again."""
    target, endpoints, _ = stack
    monkeypatch.setattr(target, "settings", replace(SETTINGS, restart_delay=3600))
    victim = target.backends[2]
    ready = f"{victim.url}/health/ready"
    os.kill(listener_pid(victim.url), signal.SIGTERM)
    poll(lambda: victim.restarts == 1 and http_ok(ready), what="replaced", timeout=30)
    assert victim.record == ReplicaRecord(victim.url, 1, 0)

    os.kill(victim.process.pid, signal.SIGKILL)
    poll(lambda: victim.restarts == 2 and http_ok(ready), what="restarted at once", timeout=30)
    assert victim.record == ReplicaRecord(victim.url, 2, -signal.SIGKILL)

    with caplog.at_level(logging.WARNING, logger="lab.targets.local"):
        os.kill(victim.process.pid, signal.SIGKILL)
        poll(lambda: victim.exited_at is not None, what="the crash seen", timeout=10)
    assert f"exited with code {-signal.SIGKILL}; restarting it in 3600 s" in caplog.text
    assert victim.restarts == 2
    assert not http_ok(ready)

    monkeypatch.undo()  # the module's 0.5 s back-off: back for the tests that follow
    poll(lambda: victim.restarts == 3 and http_ok(ready), what="restarted", timeout=30)
    assert victim.url == endpoints.backends[2]


def test_a_memory_hog_beyond_the_limit_kills_one_replica_which_is_restarted(
    stack: tuple[LocalTarget, Endpoints, Footprint],
) -> None:
    """Issue 11 item 8, the process analog of an OOM kill: RLIMIT_AS sized from the
    container's memory limit; the hog's allocation fails, the replica exits 137, the
    supervisor restarts it, the other replicas serve all along."""
    target, endpoints, _ = stack
    limit_mib = backend_memory_limit(SETTINGS) // 2**20
    victim = target.backends[0]
    others = [r.url for r in target.backends[1:]]
    chaos = BackendChaos(endpoints.backends, endpoints.chaos_token)
    small = chaos.memory_hog(limit_mib // 4, url=victim.url)  # well below the limit: held
    assert small["held_mb"].tolist() == [limit_mib // 4]
    assert chaos.memory_hog(0, url=victim.url)["held_mb"].tolist() == [0]
    assert victim.record == ReplicaRecord(victim.url, 0, None)

    killed = chaos.memory_hog(2 * limit_mib, url=victim.url)
    assert killed["held_mb"].isna().all(), killed
    served: list[bool] = []

    def restarted() -> bool:
        served.append(all(http_ok(f"{url}/health/ready") for url in others))
        return victim.restarts == 1 and http_ok(f"{victim.url}/health/ready")

    poll(restarted, what="the hogging replica restarted", timeout=60, progress=False)
    assert victim.record == ReplicaRecord(victim.url, 1, 137)
    assert served
    assert all(served)
    assert "exceed this process's memory limit; exiting with code 137" in victim.process.log_tail(
        200
    )


# Hogs across the edge of what a replica under the local RLIMIT_AS can hold (about 183 MiB on
# kind, 256 MiB minus the resident set): before issue 20 item 6, 230-255 MiB left the replica
# up and ready while /api/work failed with 500 "can't start new thread".
EDGE_HOGS_MB = (100, 170, 200, 230, 245, 255, 270)


def work_statuses(url: str, requests: int = 30) -> Counter[int]:
    """Status counts of `requests` concurrent GET /api/work?ms=20 to one replica."""
    with httpx.Client(base_url=url, timeout=30) as http, ThreadPoolExecutor(requests) as pool:
        return Counter(pool.map(lambda _: http.get("/api/work?ms=20").status_code, range(requests)))


def test_a_memory_hog_near_the_limit_is_held_by_a_serving_replica_or_kills_it(
    stack: tuple[LocalTarget, Endpoints, Footprint],
) -> None:
    """Issue 20 item 6, as the lesson teaches it: each hog is either held while the replica
    answers every request, or ends the replica (137), which the supervisor restarts."""
    target, endpoints, _ = stack
    victim = target.backends[0]
    chaos = BackendChaos(endpoints.backends, endpoints.chaos_token)
    outcomes: dict[int, str] = {}
    for mb in EDGE_HOGS_MB:
        restarts = victim.restarts
        if chaos.memory_hog(mb, url=victim.url)["held_mb"].notna().all():
            assert work_statuses(victim.url) == Counter({200: 30}), mb
            assert chaos.memory_hog(0, url=victim.url)["held_mb"].tolist() == [0]
            outcomes[mb] = "held, serving"
            continue
        poll(
            lambda after=restarts + 1: (
                victim.restarts == after and http_ok(f"{victim.url}/health/ready")
            ),
            what=f"the replica killed by a {mb} MiB hog restarted",
            timeout=60,
            progress=False,
        )
        assert victim.record.last_exit_code == 137
        outcomes[mb] = "killed, restarted"
    assert set(outcomes.values()) == {"held, serving", "killed, restarted"}, outcomes


def test_the_replicas_run_under_the_manifests_memory_limit_plus_headroom(
    stack: tuple[LocalTarget, Endpoints, Footprint],
) -> None:
    target, _, _ = stack
    deployment = find(render("kind", SETTINGS), "Deployment", "backend")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["memory"] == "256Mi"
    expected = 256 * 2**20 + ADDRESS_SPACE_HEADROOM
    for replica in target.backends:
        limits = psutil.Process(replica.process.pid).rlimit(psutil.RLIMIT_AS)
        assert limits == (expected, expected)


def test_teardown_leaves_no_process_port_or_directory(
    stack: tuple[LocalTarget, Endpoints, Footprint],
) -> None:
    target, _, left = stack
    left = replace(left, pids=left.pids | {r.process.pid for r in target.backends})
    target.down()
    assert_nothing_left(left)
    target.down()  # idempotent


def test_a_failure_during_startup_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "manifests" / "monitoring" / "local" / "prometheus.yml"
    template.parent.mkdir(parents=True)
    template.write_text(yaml.safe_dump({"scrape_configs": [{"job_name": "something-else"}]}))
    temp_root = Path(tempfile.mkdtemp(prefix="lab-test-"))
    temp_root.chmod(0o755)  # PostgreSQL's own user must reach its data directory
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    target = LocalTarget(replace(SETTINGS, repo_root=tmp_path), replicas=2)
    try:
        with pytest.raises(LabError, match=JOB):
            target.up()
        assert {c.pid for c in psutil.Process().children(recursive=True)} - before == set()
        assert list(temp_root.iterdir()) == []  # PostgreSQL was started, then removed
    finally:
        shutil.rmtree(temp_root)


def test_lab_up_json_subprocess_exits_0_on_sigterm_and_leaves_nothing(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab",
            "up",
            "--target",
            "local",
            "--replicas",
            "2",
            "--json",
            "--state-file",
            str(state_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        endpoints = Endpoints.from_dict(json.loads(line))
        assert endpoints.target == "local"
        assert len(endpoints.backends) == 2
        assert all(http_ok(f"{url}/health/ready") for url in endpoints.backends)
        state = read_state(state_file)
        assert state is not None
        assert (state.pid, state.endpoints, state.namespace) == (
            process.pid,
            endpoints,
            "ironclad-demo",
        )
        left = footprint(endpoints, psutil.Process(process.pid))
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        process.kill()
    assert_nothing_left(left)
    assert not state_file.exists()


def test_connect_starts_the_lab_and_shutdown_stops_it(tmp_path: Path) -> None:
    settings = replace(SETTINGS, state_file_override=tmp_path / "state.json")
    env = connect("local", settings=settings)
    try:
        assert env.target == "local"
        assert env.on_cluster is False
        assert env.reason == "target=local (requested): local processes, no cluster"
        assert all(http_ok(f"{url}/health/ready") for url in env.endpoints.backends)
        assert connect("auto", settings=settings).pid == env.pid  # attaches, no second lab
        left = footprint(env.endpoints, psutil.Process(env.pid))
    finally:
        assert shutdown(settings) is True
    assert_nothing_left(left)
    # issue 20 item 5: the log holds the chaos token (`up --json`), so only its owner reads it
    log = tmp_path / "lab-up.log"
    assert env.endpoints.chaos_token in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)
    assert shutdown(settings) is False


def test_ctrl_c_during_startup_tears_down_and_exits_130(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab",
            "up",
            "--target",
            "local",
            "--json",
            "--state-file",
            str(tmp_path / "state.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        parent = psutil.Process(process.pid)

        def prometheus_child() -> psutil.Process | None:
            return next(
                (c for c in parent.children(recursive=True) if "prometheus" in c.name()), None
            )

        prometheus = poll(
            prometheus_child, what="Prometheus started by lab up", timeout=30, progress=False
        )
        tsdb = next(a for a in prometheus.cmdline() if a.startswith("--storage.tsdb.path="))
        root = Path(tsdb.split("=", 1)[1]).parent
        started = {c.pid for c in parent.children(recursive=True)}
        process.send_signal(signal.SIGINT)  # PostgreSQL is initialising or backends starting
        assert process.wait(60) == 128 + signal.SIGINT  # it never came up (docs/cli.md: exit codes)
    finally:
        process.kill()
    assert not root.exists()
    assert [
        p.pid
        for p in psutil.process_iter(["cmdline"])  # PostgreSQL daemonizes
        if str(root) in " ".join(p.info["cmdline"] or [])
    ] == []
    assert [
        pid
        for pid in started
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ] == []
    assert not (tmp_path / "state.json").exists()
