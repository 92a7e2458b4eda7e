"""lab.k8s: row/rollout logic on the client's models, and the calls against a stateful fake.

`FakeApiServer` below is a small, stateful fake of a handful of Kubernetes API endpoints
(pods, eviction with a PodDisruptionBudget rule, logs, events, deployments, namespaces that
terminate, discovery + server-side apply for a few kinds, APIService status). It checks that the
helpers make the right calls through the real client and interpret the answers; it is not a
cluster, and nothing here claims cluster behaviour (those tests carry the `kind` marker).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import kubernetes_validate
import pytest
from kubernetes import client

from lab.errors import LabError, LabTimeoutError
from lab.k8s import PROBE_SCRIPT, Cluster, PodState, documents, probe_pod, rollout_complete

NS = "ironclad-demo"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def pod_json(
    name: str,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    waiting: str | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": labels or {"app": "backend"},
            "creationTimestamp": NOW.isoformat(),
        },
        "spec": {"nodeName": "ironclad-worker", "containers": [{"name": "backend", "image": "x"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "containerStatuses": [
                {
                    "name": "backend",
                    "ready": ready,
                    "restartCount": restarts,
                    "image": "x",
                    "imageID": "",
                    "state": state,
                }
            ],
        },
    }


class FakeApiServer:
    """Stateful fake of a few API endpoints (see the module docstring); not a cluster."""

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []
        self.deployments: dict[str, dict[str, Any]] = {}
        self.min_available: dict[str, int] = {}  # PDB: selector "app=x" -> minAvailable
        self.requests: list[tuple[str, str]] = []
        self.probe_phase = "Succeeded"  # what a created (probe) pod ends as
        self.namespaces = {NS}
        self.terminating: dict[str, int] = {}  # namespace -> reads left before it is gone
        self.applied: dict[str, dict[str, Any]] = {}  # path -> last server-side-applied body
        self.patches: list[tuple[str, str, dict[str, str]]] = []  # path, content type, query
        self.api_services: dict[str, list[dict[str, str]]] = {}  # name -> status.conditions
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

            def do_DELETE(self) -> None:
                fake.handle(self, "DELETE")

            def do_PATCH(self) -> None:
                fake.handle(self, "PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"null")
        self.requests.append((method, url.path))
        if method == "PATCH":
            self.patches.append((url.path, request.headers.get("Content-Type", ""), query))
        parts = url.path.strip("/").split("/")
        status, payload = self.route(method, parts, query, body)
        data = payload if isinstance(payload, str) else json.dumps(payload)
        request.send_response(status)
        request.send_header(
            "Content-Type", "text/plain" if isinstance(payload, str) else "application/json"
        )
        request.send_header("Content-Length", str(len(data.encode())))
        request.end_headers()
        request.wfile.write(data.encode())

    def route(
        self, method: str, parts: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        match method, parts:
            case "GET", ["api", "v1", "namespaces", _, "pods"]:
                selector = query.get("labelSelector")
                items = [p for p in self.pods.values() if self.matches(p, selector)]
                return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
            case "POST", ["api", "v1", "namespaces", _, "pods"]:
                name = body["metadata"]["name"]
                self.pods[name] = {**body, "status": {"phase": self.probe_phase}}
                self.logs[name] = "connected" if self.probe_phase == "Succeeded" else "denied"
                return 201, self.pods[name]
            case "GET", ["api", "v1", "namespaces", _, "pods", name]:
                return (200, self.pods[name]) if name in self.pods else self.not_found(name)
            case "DELETE", ["api", "v1", "namespaces", _, "pods", name]:
                return (200, self.pods.pop(name)) if name in self.pods else self.not_found(name)
            case "GET", ["api", "v1", "namespaces", _, "pods", name, "log"]:
                lines = self.logs.get(name, "").splitlines()
                return 200, "\n".join(lines[-int(query.get("tailLines", 10**6)) :])
            case "POST", ["api", "v1", "namespaces", _, "pods", name, "eviction"]:
                return self.evict(name, body)
            case "GET", ["api", "v1", "namespaces", _, "events"]:
                return 200, {
                    "kind": "EventList",
                    "apiVersion": "v1",
                    "metadata": {},
                    "items": self.events,
                }
            case "DELETE", ["api", "v1", "namespaces", name]:
                if name not in self.namespaces:
                    return self.not_found(name)
                self.terminating[name] = 2  # still there for the next two reads
                return 200, {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}}
            case "GET", ["api", "v1", "namespaces", name]:
                if name not in self.namespaces:
                    return self.not_found(name)
                metadata: dict[str, Any] = {"name": name}
                if name in self.terminating:
                    metadata["deletionTimestamp"] = NOW.isoformat()
                    self.terminating[name] -= 1
                    if self.terminating[name] < 0:
                        self.namespaces.discard(name)
                        del self.terminating[name]
                return 200, {"kind": "Namespace", "apiVersion": "v1", "metadata": metadata}
            case "GET", ["version"]:
                return 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.2"}
            case "GET", ["apis"]:
                return 200, {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [group(name, version) for name, version in API_GROUPS],
                }
            case "GET", ["api", "v1"] | ["apis", _, "v1"]:
                group_version = "/".join(parts[1:]) if parts[0] == "apis" else "v1"
                return 200, {
                    "kind": "APIResourceList",
                    "groupVersion": group_version,
                    "resources": [resource(*r) for r in RESOURCES[group_version]],
                }
            case "PATCH", ["api", "v1", "namespaces", name]:
                if name in self.terminating:
                    return 409, {"kind": "Status", "code": 409, "message": "terminating"}
                self.namespaces.add(name)
                self.applied[f"namespaces/{name}"] = body
                return 200, body
            case "PATCH", ["api", "v1", "namespaces", namespace, _, name]:
                if namespace in self.terminating or namespace not in self.namespaces:
                    return 403, {
                        "kind": "Status",
                        "code": 403,
                        "reason": "Forbidden",
                        "message": f"namespace {namespace} is being terminated",
                    }
                self.applied["/".join(parts[2:])] = body
                return 200, body
            case "PATCH", ["apis", "apiregistration.k8s.io", "v1", "apiservices", name]:
                self.applied[f"apiservices/{name}"] = body
                return 200, body
            case "GET", ["apis", "apiregistration.k8s.io", "v1", "apiservices", name]:
                return 200, {
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": name},
                    "spec": {"groupPriorityMinimum": 100, "versionPriority": 100},
                    "status": {"conditions": self.api_services.get(name, [])},
                }
            case "GET", ["apis", "apps", "v1", "namespaces", _, "deployments", name]:
                return 200, self.deployments[name]
            case "PATCH", ["apis", "apps", "v1", "namespaces", _, "deployments", name]:
                deployment = self.deployments[name]
                merge(deployment, body)
                deployment["metadata"]["generation"] += 1
                return 200, deployment
        return 404, {"kind": "Status", "code": 404, "message": f"no route {method} {parts}"}

    def matches(self, pod: dict[str, Any], selector: str | None) -> bool:
        if not selector:
            return True
        key, value = selector.split("=")
        return bool(pod["metadata"]["labels"].get(key) == value)

    def evict(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        assert body["kind"] == "Eviction"
        assert body["metadata"]["name"] == name
        if name not in self.pods:
            return self.not_found(name)
        for selector, minimum in self.min_available.items():
            if self.matches(self.pods[name], selector):
                healthy = sum(
                    1
                    for p in self.pods.values()
                    if self.matches(p, selector) and p["status"]["containerStatuses"][0]["ready"]
                )
                if healthy - 1 < minimum:
                    return 429, {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "code": 429,
                        "reason": "TooManyRequests",
                        "message": "Cannot evict pod as it would violate the pod's "
                        "disruption budget.",
                    }
        del self.pods[name]
        return 201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}

    def not_found(self, name: str) -> tuple[int, Any]:
        return 404, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 404,
            "reason": "NotFound",
            "message": f'pods "{name}" not found',
        }


API_GROUPS = [("apps", "v1"), ("apiregistration.k8s.io", "v1")]
RESOURCES = {  # group/version -> (resource, kind, namespaced)
    "v1": [
        ("namespaces", "Namespace", False),
        ("configmaps", "ConfigMap", True),
        ("pods", "Pod", True),
    ],
    "apps/v1": [("deployments", "Deployment", True)],
    "apiregistration.k8s.io/v1": [("apiservices", "APIService", False)],
}


def group(name: str, version: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def resource(name: str, kind: str, namespaced: bool) -> dict[str, Any]:
    return {
        "name": name,
        "singularName": kind.lower(),
        "namespaced": namespaced,
        "kind": kind,
        "verbs": ["get", "list", "patch", "create", "delete"],
    }


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def cluster(fake: FakeApiServer) -> Cluster:
    configuration = client.Configuration(host=fake.url)
    return Cluster(NS, client.ApiClient(configuration), probe_image="ironclad-backend:lab")


def test_pods_frame_shows_readiness_restarts_and_why(fake: FakeApiServer, cluster: Cluster) -> None:
    fake.pods = {
        "b": pod_json("b", ready=False, waiting="CrashLoopBackOff", restarts=4),
        "a": pod_json("a"),
        "p": pod_json("p", labels={"app": "postgres"}),
    }
    frame = cluster.pods("app=backend")
    assert list(frame["name"]) == ["a", "b"]
    assert list(frame["ready"]) == [True, False]
    assert list(frame["restarts"]) == [0, 4]
    assert list(frame["detail"]) == ["", "CrashLoopBackOff"]
    assert cluster.ready_pods("app=backend") == ["a"]
    assert cluster.running_pods("app=backend") == ["a", "b"]  # b runs, but is not ready
    assert [p.name for p in cluster.pod_states("app=backend")] == ["a", "b"]


def test_probe_without_an_image_says_what_to_pass(fake: FakeApiServer) -> None:
    bare = Cluster(NS, client.ApiClient(client.Configuration(host=fake.url)))
    with pytest.raises(LabError, match="No image to run the probe pod"):
        bare.probe("http://backend:3000/health/live")
    assert fake.requests == []  # refused before anything was created


def test_eviction_refused_by_the_budget_is_reported_not_raised(
    fake: FakeApiServer, cluster: Cluster
) -> None:
    fake.pods = {n: pod_json(n) for n in ("a", "b", "c")}
    fake.min_available = {"app=backend": 2}
    first = cluster.evict("a")
    assert (first.evicted, first.refused) == (True, False)
    second = cluster.evict("b")
    assert (second.evicted, second.refused, second.status) == (False, True, 429)
    assert "disruption budget" in second.message
    assert sorted(fake.pods) == ["b", "c"]


def test_eviction_of_a_missing_pod_raises(cluster: Cluster) -> None:
    with pytest.raises(client.ApiException) as info:
        cluster.evict("ghost")
    assert info.value.status == 404


def test_delete_pod_and_logs(fake: FakeApiServer, cluster: Cluster) -> None:
    fake.pods = {"a": pod_json("a")}
    fake.logs = {"a": "one\ntwo\nthree"}
    assert cluster.logs("a", tail=2) == "two\nthree"
    cluster.delete_pod("a", grace_period_seconds=0)
    assert fake.pods == {}


def test_events_are_sorted_oldest_first_and_limited(fake: FakeApiServer, cluster: Cluster) -> None:
    def event(i: int, reason: str) -> dict[str, Any]:
        return {
            "metadata": {"name": f"e{i}", "namespace": NS},
            "involvedObject": {"kind": "Pod", "name": "a"},
            "reason": reason,
            "message": f"m{i} ",
            "type": "Normal",
            "lastTimestamp": (NOW + timedelta(seconds=i)).isoformat(),
            "count": 1,
        }

    fake.events = [event(2, "Started"), event(1, "Pulled"), event(3, "Killing")]
    frame = cluster.events(limit=2)
    assert list(frame["reason"]) == ["Started", "Killing"]
    assert list(frame["object"]) == ["Pod/a", "Pod/a"]
    assert list(frame["message"]) == ["m2", "m3"]


def deployment_json(
    replicas: int, updated: int, available: int, total: int | None = None, observed: int = 1
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "backend", "namespace": NS, "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "backend"}},
            "template": {
                "metadata": {"labels": {"app": "backend"}},
                "spec": {"containers": [{"name": "b", "image": "x"}]},
            },
        },
        "status": {
            "observedGeneration": observed,
            "replicas": total or replicas,
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
        },
    }


def test_restart_sets_the_restarted_at_annotation(
    fake: FakeApiServer,
    cluster: Cluster,
) -> None:
    fake.deployments["backend"] = deployment_json(3, 3, 3)
    stamp = cluster.restart("backend")
    template = fake.deployments["backend"]["spec"]["template"]
    assert template["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": stamp}
    assert fake.deployments["backend"]["metadata"]["generation"] == 2


def test_wait_rollout_returns_counts_when_complete(fake: FakeApiServer, cluster: Cluster) -> None:
    fake.deployments["backend"] = deployment_json(3, 3, 3)
    fake.pods = {n: pod_json(n) for n in ("a", "b", "c")}
    counts = cluster.wait_rollout("backend", timeout=5)
    assert counts == {"desired": 3, "replicas": 3, "updated": 3, "ready": 3, "available": 3}


def test_wait_rollout_is_not_fooled_by_a_status_that_missed_a_killed_pod(
    fake: FakeApiServer, cluster: Cluster
) -> None:
    """Right after a pod kill the status may still say 3/3 available: count the pods too."""
    fake.deployments["backend"] = deployment_json(3, 3, 3)
    fake.pods = {n: pod_json(n) for n in ("a", "b")}  # c was just killed
    fake.pods["d"] = pod_json("d", ready=False)  # its replacement is starting
    with pytest.raises(LabTimeoutError, match="Deployment backend rollout"):
        cluster.wait_rollout("backend", timeout=0.5)
    fake.pods["d"] = pod_json("d")
    assert cluster.wait_rollout("backend", timeout=5)["available"] == 3


def test_wait_rollout_timeout_explains_with_pods_events_and_logs(
    fake: FakeApiServer, cluster: Cluster
) -> None:
    fake.deployments["backend"] = deployment_json(3, 1, 2, total=4)
    fake.pods = {"a": pod_json("a"), "b": pod_json("b", ready=False, waiting="ErrImagePull")}
    fake.logs = {"b": "boom: cannot connect"}
    fake.events = [
        {
            "metadata": {"name": "e", "namespace": NS},
            "reason": "Failed",
            "involvedObject": {"kind": "Pod", "name": "b"},
            "type": "Warning",
            "message": "Failed to pull image",
            "lastTimestamp": NOW.isoformat(),
        }
    ]
    with pytest.raises(LabTimeoutError) as info:
        cluster.wait_rollout("backend", timeout=0.5)
    text = str(info.value)
    assert "Deployment backend rollout" in text
    assert "ErrImagePull" in text
    assert "Failed to pull image" in text
    assert "boom: cannot connect" in text


def test_rollout_timeline_samples_until_complete(fake: FakeApiServer, cluster: Cluster) -> None:
    fake.deployments["backend"] = deployment_json(3, 3, 3)
    frame = cluster.rollout_timeline("backend", interval=0.01)
    assert list(frame.columns) == ["t", "desired", "replicas", "updated", "ready", "available"]
    assert len(frame) == 2
    assert frame["t"].is_monotonic_increasing


def deployment_model(**kwargs: Any) -> Any:
    model = client.ApiClient()._ApiClient__deserialize(  # type: ignore[attr-defined]
        deployment_json(**kwargs), "V1Deployment"
    )
    model.kind = "Deployment"
    return model


@pytest.mark.parametrize(
    ("kwargs", "complete"),
    [
        ({"replicas": 3, "updated": 3, "available": 3}, True),
        ({"replicas": 3, "updated": 3, "available": 2}, False),  # not yet available
        ({"replicas": 3, "updated": 3, "available": 3, "total": 4}, False),  # old pod remains
        ({"replicas": 3, "updated": 2, "available": 3}, False),  # not all updated
        ({"replicas": 3, "updated": 3, "available": 3, "observed": 0}, False),  # spec not seen
    ],
)
def test_rollout_complete_follows_kubectl_rules(kwargs: dict[str, int], complete: bool) -> None:
    assert rollout_complete(deployment_model(**kwargs)) is complete


def test_pod_state_of_an_unscheduled_pod() -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="x"), status=client.V1PodStatus(phase="Pending")
    )
    state = PodState.of(pod)
    assert (state.phase, state.ready, state.restarts, state.node) == ("Pending", False, 0, None)


def test_documents_expand_lists_and_drop_empty_ones() -> None:
    text = (
        "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, "
        "metadata: {name: a}}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n"
    )
    assert [d["metadata"]["name"] for d in documents(text)] == ["a", "b"]


def node_minor() -> str:
    """Kubernetes major.minor of the kind node image (manifests/kind/cluster.yaml)."""
    cluster_yaml = Path(__file__).resolve().parents[3] / "manifests" / "kind" / "cluster.yaml"
    match = re.search(r"kindest/node:v(\d+\.\d+)\.", cluster_yaml.read_text())
    assert match
    return match[1]


def test_probe_pod_is_valid_and_passes_pod_security_restricted() -> None:
    pod = probe_pod("lab-probe-1", "tcp://postgres:5432", {"app": "x"}, "ironclad-backend:lab")
    manifest = client.ApiClient().sanitize_for_serialization(pod)  # type: ignore[no-untyped-call]
    manifest.update(apiVersion="v1", kind="Pod")
    kubernetes_validate.validate(manifest, node_minor(), strict=True)
    container = manifest["spec"]["containers"][0]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert manifest["metadata"]["labels"] == {"app": "x", "lab-probe": "lab-probe-1"}
    assert container["command"][-1] == "tcp://postgres:5432"
    # denied DNS must fail fast (well inside the probe's wait), not after resolv.conf defaults
    options = {o["name"]: o["value"] for o in manifest["spec"]["dnsConfig"]["options"]}
    assert options == {"ndots": "1", "timeout": "1", "attempts": "1"}


@pytest.mark.parametrize(("phase", "allowed"), [("Succeeded", True), ("Failed", False)])
def test_probe_runs_a_pod_reads_its_verdict_and_removes_it(
    fake: FakeApiServer, cluster: Cluster, phase: str, allowed: bool
) -> None:
    fake.probe_phase = phase
    result = cluster.probe("http://backend:3000/health/live", labels={"app": "x"}, timeout=5)
    assert (result.ok, result.url) == (allowed, "http://backend:3000/health/live")
    assert result.output == ("connected" if allowed else "denied")
    assert fake.pods == {}  # the probe pod is deleted afterwards
    created = [path for method, path in fake.requests if method == "POST"]
    assert created == [f"/api/v1/namespaces/{NS}/pods"]


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_port
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("url", "ok", "output"),
    [
        ("http://127.0.0.1:{port}/health", True, "HTTP 501"),  # any HTTP answer got through
        ("tcp://127.0.0.1:{port}", True, "connected"),
        ("http://127.0.0.1:1/health", False, "no connection: "),
        ("tcp://127.0.0.1:1", False, "no connection: "),
    ],
)
def test_probe_script_verdicts(http_port: int, url: str, ok: bool, output: str) -> None:
    """The script the probe pod runs, run here with this interpreter against local ports."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE_SCRIPT, url.format(port=http_port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode == 0) is ok
    assert result.stdout.startswith(output)


def test_delete_namespace_waits_until_it_is_gone(fake: FakeApiServer, cluster: Cluster) -> None:
    cluster.delete_namespace(timeout=10)
    assert fake.namespaces == set()
    reads = [path for method, path in fake.requests if method == "GET"]
    assert reads.count(f"/api/v1/namespaces/{NS}") > 1  # polled while it was terminating
    cluster.delete_namespace(timeout=10)  # already gone: nothing to do


@pytest.fixture
def discovery_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dynamic client caches discovery in the temp dir: keep it in this test's."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


APPLIED = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": NS},
        "data": {"a": "1"},
    },
    {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {
            "group": "metrics.k8s.io",
            "version": "v1beta1",
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "service": {"name": "metrics-server", "namespace": "kube-system"},
        },
    },
]


def test_apply_waits_out_a_terminating_namespace_then_applies_server_side(
    fake: FakeApiServer, cluster: Cluster, discovery_cache: None
) -> None:
    fake.terminating[NS] = 0  # an earlier teardown is still deleting the namespace
    frame = cluster.apply(copy.deepcopy(APPLIED), timeout=10)
    assert frame.fillna("").values.tolist() == [
        ["Namespace", NS, ""],
        ["ConfigMap", "c", NS],
        ["APIService", "v1beta1.metrics.k8s.io", ""],
    ]
    assert [path for path, _, _ in fake.patches] == [
        f"/api/v1/namespaces/{NS}",
        f"/api/v1/namespaces/{NS}/configmaps/c",
        "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io",
    ]
    for _, content_type, query in fake.patches:
        assert content_type == "application/apply-patch+yaml"
        assert query["fieldManager"] == "ironclad-lab"
        assert query["force"].lower() == "true"
    before = copy.deepcopy(fake.applied)
    cluster.apply(copy.deepcopy(APPLIED), timeout=10)  # idempotent: same bodies again
    assert fake.applied == before
    assert len(fake.patches) == 6


def test_wait_api_service_needs_the_available_condition(
    fake: FakeApiServer, cluster: Cluster
) -> None:
    name = "v1beta1.metrics.k8s.io"
    fake.api_services[name] = [
        {
            "type": "Available",
            "status": "False",
            "reason": "MissingEndpoints",
            "message": "no endpoints",
        }
    ]
    with pytest.raises(LabTimeoutError, match="MissingEndpoints"):
        cluster.wait_api_service(name, timeout=0.5)
    fake.api_services[name] = [
        {"type": "Available", "status": "True", "reason": "Passed", "message": "all checks passed"}
    ]
    cluster.wait_api_service(name, timeout=5)


def test_a_probe_pod_never_turns_ready() -> None:
    """It may borrow `app: backend`; it must not receive the backend Service's traffic."""
    pod: Any = probe_pod("lab-probe-1", "tcp://postgres:5432", {"app": "backend"}, "i")
    readiness = pod.spec.containers[0].readiness_probe
    script = readiness._exec.command
    assert script[:2] == ["python", "-c"]
    assert subprocess.run([sys.executable, "-c", script[2]], check=False).returncode != 0
