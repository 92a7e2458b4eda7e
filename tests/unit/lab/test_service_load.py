"""Load through the backend's real Service: the load-generator Job (its manifest validated,
hardened, linted) and its program run for real here, as the Job's own command, against local
HTTP servers; its report read back into the `LoadResult` the notebooks read; the path each
target takes. What a cluster adds (kube-proxy picking endpoints, the Job controller, the
kubelet's SIGTERM) is not here: the kind and workshop-kind workflow jobs run lesson 04 on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
from local_http import serving

from lab import load, loadgen, service_load
from lab.errors import LabError, NeedsClusterError
from lab.lint import lint
from lab.manifests import render
from lab.model_validation import model_problem
from lab.settings import DEFAULT_NAMESPACE, get_settings
from lab.targets import Endpoints, spec

SETTINGS = get_settings()
IMAGE = "ironclad-backend:lab"


class Backend(BaseHTTPRequestHandler):
    """200 for /api/items, 503 for /api/fail (a replica not ready), /api/slow sleeps 1 s."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/api/slow":
            time.sleep(1.0)
        code = 503 if self.path == "/api/fail" else 200
        body = b'{"status": "ok"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def backend() -> Iterator[str]:
    """A real HTTP server on a free loopback port, standing in for the backend's Service."""
    with serving(Backend) as url:
        yield url


def job(rate: float = 50, requests: int = 10, **options: Any) -> dict[str, Any]:
    return loadgen.job_manifest("backend-loadgen-1", IMAGE, rate=rate, requests=requests, **options)


def command_here(manifest: dict[str, Any], service: str) -> list[str]:
    """The Job's own command, run here: this interpreter, the Service's name -> `service`."""
    argv = list(manifest["spec"]["template"]["spec"]["containers"][0]["command"])
    assert argv[:2] == ["python", "-c"]
    return [sys.executable, *[a.replace(loadgen.SERVICE_URL, service) for a in argv[1:]]]


def plan(
    rate: float = 50, requests: int = 10, path: str = "/api/items", timeout: float = 10.0
) -> load.LoadPlan:
    """The plan `JobLoad` builds its Job from (the same numbers as `job(...)`)."""
    return load.LoadPlan.build(
        loadgen.SERVICE_URL, rate=rate, requests=requests, path=path, timeout=timeout
    )


def run_job_here(manifest: dict[str, Any], service: str) -> list[str]:
    done = subprocess.run(
        command_here(manifest, service), capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr == ""
    return done.stdout.splitlines()


# --- the Job --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.36.0", "1.37.0"])
def test_the_job_validates_strictly_and_the_clients_model_accepts_it(version: str) -> None:
    manifest = job()
    kubernetes_validate.validate(manifest, version, strict=True)
    assert model_problem(manifest) is None
    broken = job()
    broken["spec"]["template"]["spec"]["containers"][0]["comand"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_the_jobs_pod_is_hardened_and_passes_the_stacks_lint() -> None:
    """Pod Security restricted, resources, pinned pull policy: the lint that holds every pod of
    the stack holds the load generator's too, beside the stack it loads."""
    manifest = {**job(), "metadata": {**job()["metadata"], "namespace": DEFAULT_NAMESPACE}}
    objects = [*render("kind", SETTINGS), manifest]
    assert lint(objects, DEFAULT_NAMESPACE) == []
    pod = manifest["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod  # the admission policy refuses the learner's
    assert manifest["spec"]["backoffLimit"] == 0  # never sends the load twice


def test_the_job_is_bounded_in_time_and_gives_the_report_room_after_sigterm() -> None:
    manifest = job(rate=20, requests=600, timeout=10)  # 30 s of load
    assert manifest["spec"]["activeDeadlineSeconds"] >= 30 + 10
    grace = manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 10  # in-flight requests time out within 10 s, then the last line


# --- the program, run for real, and its report read back ------------------------------------


def test_a_real_report_reads_back_as_the_load_result_the_notebooks_read(backend: str) -> None:
    lines = run_job_here(job(rate=50, requests=10), backend)
    assert json.loads(lines[0])["event"] == "start"
    assert json.loads(lines[-1]) == {"event": "done", "due": 10, "stopped": False}
    result = service_load.parse_report(lines, plan())
    assert isinstance(result, load.LoadResult)
    columns = ["scheduled_s", "sent_s", "latency_s", "status", "error", "url"]  # lab.load's
    assert list(result.df.columns) == columns
    assert (result.df["status"] == 200).all()
    assert result.df["error"].isna().all()
    assert (result.df["url"] == f"{loadgen.SERVICE_URL}/api/items").all()
    assert result.df["scheduled_s"].tolist() == pytest.approx([i / 50 for i in range(10)])
    summary = result.summary()
    assert summary["requests"] == 10
    assert summary["error_ratio"] == 0
    assert 0 < summary["p95"] < 1


def test_5xx_answers_count_as_errors_the_same_way(backend: str) -> None:
    lines = run_job_here(job(rate=50, requests=5, path="/api/fail"), backend)
    result = service_load.parse_report(lines, plan(requests=5, path="/api/fail"))
    assert (result.df["status"] == 503).all()
    assert result.summary()["error_ratio"] == 1.0


def test_timeouts_and_refusals_carry_lab_loads_error_texts(backend: str) -> None:
    slow = run_job_here(job(rate=20, requests=2, path="/api/slow", timeout=0.3), backend)
    result = service_load.parse_report(
        slow, plan(rate=20, requests=2, path="/api/slow", timeout=0.3)
    )
    assert result.df["error"].tolist() == [load.timeout_error(0.3)] * 2
    assert (result.df["latency_s"] >= 0.3).all()
    assert result.df["status"].isna().all()
    closed = backend.rsplit(":", 1)[0] + ":1"  # nothing listens on port 1
    refused = service_load.parse_report(run_job_here(job(requests=3), closed), plan(requests=3))
    assert refused.df["error"].str.startswith("ConnectionRefusedError").all()
    assert refused.summary()["error_ratio"] == 1.0


def test_sigterm_stops_the_schedule_and_the_report_still_ends(backend: str) -> None:
    """What `stop()` causes on a cluster (the Job deleted: its pod gets SIGTERM), here."""
    process = subprocess.Popen(
        command_here(job(rate=20, requests=2000), backend), stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]  # start + 5 requests reported
        os.kill(process.pid, signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines += rest.splitlines()
    done = json.loads(lines[-1])
    assert done["event"] == "done"
    assert done["stopped"] is True
    assert 5 <= done["due"] < 2000
    result = service_load.parse_report(lines, plan(rate=20, requests=2000))
    assert len(result.df) == done["due"]
    assert (result.df["status"] == 200).all()


def test_a_report_without_its_last_line_is_an_error_that_shows_the_output(backend: str) -> None:
    lines = run_job_here(job(requests=3), backend)[:-1]
    traceback = ["Traceback (most recent call last):", "MemoryError"]
    with pytest.raises(LabError, match="has no last line") as caught:
        service_load.parse_report([*lines, *traceback], plan(requests=3), where="Job x")
    assert "MemoryError" in str(caught.value)
    assert "3 requests reported" in str(caught.value)


def test_a_report_missing_a_due_request_is_an_error(backend: str) -> None:
    lines = run_job_here(job(requests=4), backend)
    without_second = [line for line in lines if not line.startswith('{"i":1,')]
    with pytest.raises(LabError, match="misses 1 of the 4 requests"):
        service_load.parse_report(without_second, plan(requests=4))


def test_the_program_uses_the_standard_library_only(backend: str) -> None:
    """It runs in the backend image, where the lab's packages are not installed: here without
    site-packages (-S) and isolated from the environment (-I), it still sends and reports."""
    argv = command_here(job(requests=2), backend)
    done = subprocess.run(
        [argv[0], "-I", "-S", *argv[1:]], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (service_load.parse_report(done.stdout.splitlines(), plan(requests=2)).df["status"]
            == 200).all()  # fmt: skip


# --- which path each target takes -------------------------------------------------------------


@dataclass
class FakeLab:
    """The parts of `lab.session.Lab` that `service_load` reads."""

    target: str
    endpoints: Endpoints
    namespace: str = DEFAULT_NAMESPACE
    settings: Any = SETTINGS
    k8s: Any = field(default=None)

    @property
    def spec(self) -> Any:
        return spec(self.target)


def endpoints(target: str, service: str = "") -> Endpoints:
    return Endpoints(target, "http://127.0.0.1:1", ["http://127.0.0.1:1"], service=service)


def test_each_target_names_how_its_load_reaches_the_service() -> None:
    assert {name: spec(name).service_load for name in ("local", "kind", "cluster")} == {
        "local": "",
        "kind": "node-port",
        "cluster": "job",
    }


def test_on_local_there_is_no_service_to_load() -> None:
    with pytest.raises(NeedsClusterError, match="no Service on the local target"):
        service_load.start(FakeLab("local", endpoints("local")), rate=10, requests=1)


def test_kind_without_a_mapped_port_says_to_recreate_the_cluster() -> None:
    with pytest.raises(LabError, match="maps no host port") as caught:
        service_load.start(FakeLab("kind", endpoints("kind")), rate=10, requests=1)
    assert "kind delete cluster --name ironclad" in caught.value.next_step


def test_kind_sends_through_the_node_port_url_a_connection_per_request(backend: str) -> None:
    lab = FakeLab("kind", endpoints("kind", service=backend))
    with service_load.background(lab, rate=50, requests=5, progress=False) as traffic:
        result = traffic.result(timeout=30)
    assert traffic.plan.fresh_connections
    assert (result.df["url"] == f"{backend}/api/items").all()
    assert (result.df["status"] == 200).all()
    assert "NodePort Service backend-node-port" in service_load.path(lab)


def test_the_cluster_path_needs_the_recorded_image() -> None:
    lab = FakeLab("cluster", endpoints("cluster"), k8s=SimpleNamespace(probe_image=None))
    with pytest.raises(LabError, match="No image to run the load generator"):
        service_load.start(lab, rate=10, requests=1)


@pytest.mark.parametrize("target", ["kind", "cluster"])
def test_after_lesson_05s_default_deny_the_generator_reaches_the_backend_and_dns_only(
    target: str,
) -> None:
    """The NetworkPolicies of the render, evaluated for the Job's pod (its template's labels):
    the load it sends still reaches the backend (lessons 05 and 07 load through the Service
    after the default deny), and nothing else."""
    from lab.netpol import INTERNET, KUBE_DNS, Connection, Endpoint, endpoint, evaluate
    from lab.pod_templates import pods

    objects = render(target, SETTINGS)
    labels = job()["spec"]["template"]["metadata"]["labels"]
    generator = Endpoint("load generator", DEFAULT_NAMESPACE, labels)
    workloads = {endpoint(p).name: endpoint(p) for p in pods(objects)}

    def allowed(target_: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return evaluate(objects, Connection(generator, target_, port, protocol)).allowed

    assert allowed(workloads["backend"], 3000)
    assert allowed(KUBE_DNS, 53, "UDP")
    assert not allowed(workloads["postgres"], 5432)
    assert not allowed(workloads["prometheus"], 9090)
    assert not allowed(INTERNET, 443)
    assert not evaluate(objects, Connection(workloads["backend"], generator, 8080)).allowed


def test_kind_records_the_node_port_url_once_the_backend_answers_through_it(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Endpoints.service` is set after the backend is built and its NodePort answered ready
    (here a local server stands in for the host port kind maps); the forwards themselves
    (`KubeStack.forward`) are not what this test is about."""
    from lab.targets import kind, kube

    def forwards_only(self: kube.KubeStack) -> None:
        self._endpoints = endpoints("kind")

    monkeypatch.setattr(kube.KubeStack, "forward", forwards_only)
    target = kind.KindTarget(SETTINGS)
    target.cluster = SimpleNamespace(diagnose=lambda selector: "")  # type: ignore[assignment]
    target.service_port = int(backend.rsplit(":", 1)[1])
    target.parts = ("namespace", "config", "postgres")
    target.forward()
    assert target.endpoints.service == ""  # no backend yet: no Service URL
    target.parts = (*target.parts, "backend")
    target.forward()
    assert target.endpoints.service == backend
