"""Experiment flow (rollbacks always run), pod selection and actions, chaos client errors."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from lab.chaos import (
    EXIT_OUT_OF_MEMORY,
    BackendChaos,
    Experiment,
    kill_pod,
    kill_replica,
    restarts,
)
from lab.errors import ChaosError
from lab.k8s import PodState
from lab.net import free_port
from lab.targets import ReplicaRecord


@dataclass
class FakeCluster:
    """A stateful stand-in for lab.k8s.NamespaceClient: pods in a dict.

    Only the chaos helpers' own logic (which pods, what is reported) is tested against it.
    """

    pods_by_name: dict[str, bool] = field(default_factory=dict)  # name -> deleting
    calls: list[tuple[str, str, int | None]] = field(default_factory=list)

    def pods(self, selector: str | None = None) -> list[PodState]:
        return [
            PodState(name, "Running", True, 0, "", None, None, deleting, None)
            for name, deleting in self.pods_by_name.items()
        ]

    def delete_pod(self, pod: str, grace_period_seconds: int | None = None) -> None:
        self.calls.append(("delete", pod, grace_period_seconds))
        self.pods_by_name[pod] = True


def cluster(n: int = 3) -> FakeCluster:
    return FakeCluster({f"backend-{i}": False for i in range(n)})


def test_kill_pod_by_selector_picks_running_pods_and_reports_them() -> None:
    fake = cluster()
    fake.pods_by_name["backend-0"] = True  # already terminating: never picked
    killed = kill_pod(fake, selector="app=backend", count=1)
    assert killed.columns.tolist() == ["pod", "action", "done", "detail"]
    [pod] = killed["pod"]
    assert pod in {"backend-1", "backend-2"}
    assert fake.calls == [("delete", pod, 0)]


def test_kill_pod_by_name_and_all_matching() -> None:
    fake = cluster()
    assert kill_pod(fake, name="backend-2", grace_period_seconds=5)["pod"].tolist() == ["backend-2"]
    assert fake.calls == [("delete", "backend-2", 5)]
    assert kill_pod(fake, selector="app=backend", count=None)["pod"].tolist() == [
        "backend-0",
        "backend-1",
    ]


def test_pod_actions_need_exactly_one_target() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        kill_pod(cluster())
    with pytest.raises(ValueError, match="exactly one"):
        kill_pod(cluster(), name="a", selector="app=backend")
    with pytest.raises(ChaosError, match="No running pod"):
        kill_pod(cluster(0), selector="app=nothing")


def test_completed_experiment_journals_every_phase_in_order() -> None:
    calls: list[str] = []
    journal = Experiment(
        "latency stays low",
        steady_state=[("p95 < 500 ms", lambda: True)],
        method=[lambda: calls.append("inject")],
        rollbacks=[("reset", lambda: calls.append("reset"))],
    ).run()
    assert journal.status == "completed"
    frame = journal.to_frame()
    assert frame["phase"].tolist() == [
        "steady-state before",
        "method",
        "steady-state after",
        "rollback",
    ]
    assert frame["name"].tolist() == ["p95 < 500 ms", "<lambda>", "p95 < 500 ms", "reset"]
    assert frame["ok"].all()
    assert calls == ["inject", "reset"]
    assert (frame["duration_s"] >= 0).all()
    assert journal.errors == []


def test_lost_steady_state_is_deviated_and_still_rolls_back() -> None:
    healthy = iter([True, False])
    rolled_back: list[bool] = []
    journal = Experiment(
        "errors stay low",
        steady_state=[lambda: next(healthy)],
        method=[lambda: None],
        rollbacks=[lambda: rolled_back.append(True)],
    ).run()
    assert journal.status == "deviated"
    assert rolled_back == [True]


def test_failing_method_aborts_but_every_rollback_runs() -> None:
    def inject() -> None:
        raise RuntimeError("backend unreachable")

    def broken_rollback() -> None:
        raise OSError("first rollback failed")

    rolled_back: list[str] = []
    journal = Experiment(
        "x",
        method=[inject, lambda: rolled_back.append("never")],
        rollbacks=[broken_rollback, lambda: rolled_back.append("second")],
    ).run()
    assert journal.status == "aborted"
    assert rolled_back == ["second"]
    assert journal.errors == [
        "method inject: RuntimeError: backend unreachable",
        "rollback broken_rollback: OSError: first rollback failed",
    ]


def test_unmet_steady_state_skips_the_method_but_rolls_back() -> None:
    ran: list[str] = []
    journal = Experiment(
        "x",
        steady_state=[lambda: pd.DataFrame().empty is False],
        method=[lambda: ran.append("method")],
        rollbacks=[lambda: ran.append("rollback")],
    ).run()
    assert journal.status == "aborted"
    assert ran == ["rollback"]


def test_interrupt_during_the_method_still_rolls_back() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    ran: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        Experiment("x", method=[interrupted], rollbacks=[lambda: ran.append("rollback")]).run()
    assert ran == ["rollback"]


def test_unreachable_backend_is_a_chaos_error_with_a_next_step() -> None:
    chaos = BackendChaos([f"http://127.0.0.1:{free_port()}"], "token", timeout=1)
    with pytest.raises(ChaosError, match=r"failed[\s\S]*lab.connect"):
        chaos.enable()


def listener(port: int, folder: Path, *, wait: bool = True) -> subprocess.Popen[bytes]:
    """A real listener process on `port` (not a backend: kill_replica only needs a pid behind a
    port); with `wait`, returned once it listens."""
    from lab.net import port_is_open
    from lab.procs import wait_until

    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if wait:
            wait_until(lambda: port_is_open(port), timeout=10, what="the listener")
    except BaseException:
        server.kill()
        server.wait()
        raise
    return server


def test_kill_replica_kills_the_process_listening_on_the_url(tmp_path: Path) -> None:
    port = free_port()
    server = listener(port, tmp_path)
    try:
        touched = kill_replica(f"http://127.0.0.1:{port}")
        assert server.wait(timeout=10) == -9
        assert touched.to_dict("records") == [
            {
                "pod": f"http://127.0.0.1:{port}",
                "action": "kill",
                "done": True,
                "detail": f"pid {server.pid} got SIGKILL",
            }
        ]
    finally:
        server.kill()
        server.wait()


def test_kill_replica_times_two_kills_the_process_restarted_on_the_port_too(
    tmp_path: Path,
) -> None:
    """A crash loop: the second kill waits for a new process on the port (started here, as
    the local supervisor would) and kills that one. (Not waited for here: kill_replica may kill
    it as soon as it listens, before this test would have seen its port open.)"""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    servers = [listener(port, tmp_path)]
    with ThreadPoolExecutor(1) as pool:
        try:
            touched = pool.submit(kill_replica, url, times=2, timeout=30)
            assert servers[0].wait(timeout=10) == -9
            servers.append(listener(port, tmp_path, wait=False))
            rows = touched.result(timeout=30)
            assert servers[1].wait(timeout=10) == -9
        finally:
            for server in servers:
                server.kill()
                server.wait()
    assert rows["detail"].tolist() == [f"pid {s.pid} got SIGKILL" for s in servers]


def test_the_out_of_memory_exit_code_is_the_backends() -> None:
    from backend.chaos import EXIT_OUT_OF_MEMORY as BACKEND_EXIT

    assert EXIT_OUT_OF_MEMORY == BACKEND_EXIT == 137


def test_restarts_on_the_local_target_reads_the_supervisors_records() -> None:
    class Local:
        on_cluster = False

        def replica_records(self) -> list[ReplicaRecord]:
            return [ReplicaRecord("http://a", 1, 137), ReplicaRecord("http://b", 2, -9)]

        def backend_pods(self) -> list[object]:
            raise AssertionError("not on a cluster")

    frame = restarts(Local())
    assert frame.columns.tolist() == ["replica", "restarts", "last_exit_code", "reason"]
    assert frame["restarts"].tolist() == [1, 2]
    assert frame["reason"].tolist() == [
        "out of memory (process analog of OOMKilled: RLIMIT_AS)",
        "killed by SIGKILL",
    ]


def test_restarts_on_kind_reads_restart_count_and_oomkilled_from_the_pods() -> None:
    """Recorded container status shapes (the API's V1Pod, read by PodState.of), as a cluster
    reports an OOM kill."""
    from kubernetes import client

    def pod(name: str, restarts: int, last: client.V1ContainerStateTerminated | None) -> object:
        status = client.V1ContainerStatus(
            name="backend",
            ready=True,
            restart_count=restarts,
            image="x",
            image_id="",
            last_state=client.V1ContainerState(terminated=last),
        )
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            status=client.V1PodStatus(container_statuses=[status]),
        )

    class Kind:
        on_cluster = True

        def replica_records(self) -> list[ReplicaRecord]:
            raise AssertionError("not local")

        def backend_pods(self) -> list[PodState]:
            oom = client.V1ContainerStateTerminated(exit_code=137, reason="OOMKilled")
            return [PodState.of(pod("backend-a", 1, oom)), PodState.of(pod("backend-b", 0, None))]

    frame = restarts(Kind())
    assert frame["replica"].tolist() == ["backend-a", "backend-b"]
    assert frame["restarts"].tolist() == [1, 0]
    assert frame.loc[0, "last_exit_code"] == 137
    assert frame["last_exit_code"].isna().tolist() == [False, True]
    assert frame["reason"].tolist() == ["OOMKilled", ""]
