"""lab.k8s: row/rollout logic on the client's models, and the calls against the recording fake.

`FakeApiServer` (tests/plugins/fake_kube_api.py) is a small, stateful, recording fake of the API
endpoints the lab uses. It checks that the helpers make the right calls through the real client
and interpret the answers; it is not a cluster, and nothing here claims cluster behaviour
(those tests carry the `kind` marker).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kubernetes_validate
import pytest
from kubernetes import client

from lab.errors import LabError, LabTimeoutError
from lab.k8s import (
    PROBE_SCRIPT,
    Applied,
    NamespaceClient,
    Node,
    PodState,
    documents,
    probe_pod,
    rollout_complete,
)

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

NS = "ironclad-demo"


def test_pods_frame_shows_readiness_restarts_and_why(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    fake.pods = {
        "b": fake.pod_json("b", ready=False, waiting="CrashLoopBackOff", restarts=4),
        "a": fake.pod_json("a"),
        "p": fake.pod_json("p", labels={"app": "postgres"}),
    }
    frame = cluster.pods_frame("app=backend")
    assert list(frame["name"]) == ["a", "b"]
    assert list(frame["ready"]) == [True, False]
    assert list(frame["restarts"]) == [0, 4]
    assert list(frame["detail"]) == ["", "CrashLoopBackOff"]
    assert cluster.ready_pod_names("app=backend") == ["a"]
    assert cluster.running_pod_names("app=backend") == ["a", "b"]  # b runs, but is not ready
    pods = cluster.pods("app=backend")
    assert [p.name for p in pods] == ["a", "b"]
    assert all(isinstance(p, PodState) for p in pods)
    assert cluster.pod("b") == pods[1]


def test_probe_without_an_image_says_what_to_pass(fake: FakeApiServer) -> None:
    bare = NamespaceClient(NS, client.ApiClient(client.Configuration(host=fake.url)))
    with pytest.raises(LabError, match="No image to run the probe pod"):
        bare.probe("http://backend:3000/health/live")
    assert fake.requests == []  # refused before anything was created


def test_eviction_refused_by_the_budget_is_reported_not_raised(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    fake.pods = {n: fake.pod_json(n) for n in ("a", "b", "c")}
    fake.min_available = {"app=backend": 2}
    first = cluster.evict("a")
    assert (first.evicted, first.refused) == (True, False)
    second = cluster.evict("b")
    assert (second.evicted, second.refused, second.status) == (False, True, 429)
    assert "disruption budget" in second.message
    assert sorted(fake.pods) == ["b", "c"]


def test_eviction_of_a_missing_pod_raises(cluster: NamespaceClient) -> None:
    with pytest.raises(client.ApiException) as info:
        cluster.evict("ghost")
    assert info.value.status == 404


def test_delete_pod_and_logs(fake: FakeApiServer, cluster: NamespaceClient) -> None:
    fake.pods = {"a": fake.pod_json("a")}
    fake.logs = {"a": "one\ntwo\nthree"}
    assert cluster.logs("a", tail=2) == "two\nthree"
    cluster.delete_pod("a", grace_period_seconds=0)
    assert fake.pods == {}


def test_follow_log_yields_whole_lines_and_asks_to_follow(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    """The load generator's report is read this way (`kubectl logs -f`); the fake answers the
    whole log at once, so the streaming itself is exercised by the kind workflow only."""
    fake.pods = {"a": fake.pod_json("a")}
    fake.logs = {"a": '{"i":0}\n{"i":1}\nlast line without a newline'}
    assert list(cluster.follow_log("a")) == ['{"i":0}', '{"i":1}', "last line without a newline"]
    assert fake.calls[-1].query.get("follow") == "true"


def test_events_are_sorted_oldest_first_and_limited(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    def event(i: int, reason: str) -> dict[str, Any]:
        return {
            "metadata": {"name": f"e{i}", "namespace": NS},
            "involvedObject": {"kind": "Pod", "name": "a"},
            "reason": reason,
            "message": f"m{i} ",
            "type": "Normal",
            "lastTimestamp": (fake.now + timedelta(seconds=i)).isoformat(),
            "count": 1,
        }

    fake.events = [event(2, "Started"), event(1, "Pulled"), event(3, "Killing")]
    assert [e.reason for e in cluster.events(limit=2)] == ["Started", "Killing"]
    frame = cluster.events_frame(limit=2)
    assert list(frame["reason"]) == ["Started", "Killing"]
    assert list(frame["object"]) == ["Pod/a", "Pod/a"]
    assert list(frame["message"]) == ["m2", "m3"]


def test_restart_sets_the_restarted_at_annotation(
    fake: FakeApiServer,
    cluster: NamespaceClient,
) -> None:
    fake.deployments["backend"] = fake.deployment_json(3, 3, 3)
    stamp = cluster.restart("backend")
    template = fake.deployments["backend"]["spec"]["template"]
    assert template["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": stamp}
    assert fake.deployments["backend"]["metadata"]["generation"] == 2


def test_wait_rollout_returns_counts_when_complete(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    fake.deployments["backend"] = fake.deployment_json(3, 3, 3)
    fake.pods = {n: fake.pod_json(n) for n in ("a", "b", "c")}
    rollout = cluster.wait_rollout("backend", timeout=5)
    counts = (rollout.desired, rollout.replicas, rollout.updated, rollout.ready, rollout.available)
    assert counts == (3, 3, 3, 3, 3)
    assert rollout.complete


def test_wait_rollout_is_not_fooled_by_a_status_that_missed_a_killed_pod(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    """Right after a pod kill the status may still say 3/3 available: count the pods too."""
    fake.deployments["backend"] = fake.deployment_json(3, 3, 3)
    fake.pods = {n: fake.pod_json(n) for n in ("a", "b")}  # c was just killed
    fake.pods["d"] = fake.pod_json("d", ready=False)  # its replacement is starting
    with pytest.raises(LabTimeoutError, match="Deployment backend rollout"):
        cluster.wait_rollout("backend", timeout=0.5)
    fake.pods["d"] = fake.pod_json("d")
    assert cluster.wait_rollout("backend", timeout=5).available == 3


def test_wait_rollout_timeout_explains_with_pods_events_and_logs(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    fake.deployments["backend"] = fake.deployment_json(3, 1, 2, total=4)
    fake.pods = {
        "a": fake.pod_json("a"),
        "b": fake.pod_json("b", ready=False, waiting="ErrImagePull"),
    }
    fake.logs = {"b": "boom: cannot connect"}
    fake.events = [
        {
            "metadata": {"name": "e", "namespace": NS},
            "reason": "Failed",
            "involvedObject": {"kind": "Pod", "name": "b"},
            "type": "Warning",
            "message": "Failed to pull image",
            "lastTimestamp": fake.now.isoformat(),
        }
    ]
    with pytest.raises(LabTimeoutError) as info:
        cluster.wait_rollout("backend", timeout=0.5)
    text = str(info.value)
    assert "Deployment backend rollout" in text
    assert "ErrImagePull" in text
    assert "Failed to pull image" in text
    assert "boom: cannot connect" in text


def test_rollout_timeline_samples_until_complete(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    fake.deployments["backend"] = fake.deployment_json(3, 3, 3)
    frame = cluster.rollout_timeline_frame("backend", interval=0.01)
    assert list(frame.columns) == ["t", "desired", "replicas", "updated", "ready", "available"]
    assert len(frame) == 2
    assert frame["t"].is_monotonic_increasing


def deployment_model(body: dict[str, Any]) -> Any:
    model = client.ApiClient()._ApiClient__deserialize(  # type: ignore[attr-defined]
        body, "V1Deployment"
    )
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
def test_rollout_complete_follows_kubectl_rules(
    fake: FakeApiServer, kwargs: dict[str, int], complete: bool
) -> None:
    model = deployment_model(fake.deployment_json(**kwargs))
    assert rollout_complete(model, "Deployment") is complete


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
    fake: FakeApiServer, cluster: NamespaceClient, phase: str, allowed: bool
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


def test_delete_namespace_waits_until_it_is_gone(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    cluster.delete_namespace(timeout=10)
    assert fake.namespaces == set()
    reads = [path for method, path in fake.requests if method == "GET"]
    assert reads.count(f"/api/v1/namespaces/{NS}") > 1  # polled while it was terminating
    cluster.delete_namespace(timeout=10)  # already gone: nothing to do


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
    fake: FakeApiServer, cluster: NamespaceClient, discovery_cache: None
) -> None:
    fake.terminating[NS] = 0  # an earlier teardown is still deleting the namespace
    applied = cluster.apply(copy.deepcopy(APPLIED), timeout=10)
    assert applied == [
        Applied("Namespace", NS, None),
        Applied("ConfigMap", "c", NS),
        Applied("APIService", "v1beta1.metrics.k8s.io", None),
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
    fake: FakeApiServer, cluster: NamespaceClient
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


def test_node_of_reads_role_readiness_and_every_image_name() -> None:
    """00-preflight's two node checks read these fields (a kind node as the API returns it)."""
    image = "docker.io/library/ironclad-backend:lab"
    node = client.V1Node(
        metadata=client.V1ObjectMeta(
            name="ironclad-control-plane",
            labels={"node-role.kubernetes.io/control-plane": ""},
        ),
        status=client.V1NodeStatus(
            conditions=[client.V1NodeCondition(type="Ready", status="True")],
            node_info=client.V1NodeSystemInfo(
                kubelet_version="v1.31.0", architecture="amd64", boot_id="",
                container_runtime_version="", kernel_version="", kube_proxy_version="",
                machine_id="", operating_system="linux", os_image="", system_uuid="",
            ),
            images=[client.V1ContainerImage(names=[image, "sha256:ab"])],
        ),
    )  # fmt: skip
    assert Node.of(node) == Node(
        "ironclad-control-plane",
        "control-plane",
        True,
        "v1.31.0",
        (image, "sha256:ab"),
    )
