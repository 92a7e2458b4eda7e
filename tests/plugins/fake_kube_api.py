"""The recording fake of the Kubernetes API that the lab's unit tests drive (not a cluster), and
its fixtures (`fake`, `cluster`, `kubeconfig`, `upstream`, `gate_of`, `discovery_cache`): a pytest
plugin that tests/conftest.py loads (`pytest_plugins`); tests import its helpers by module name
(`from fake_kube_api import FakeApiServer, pod_json`).

`FakeApiServer` is a real HTTP server (with the websocket port-forward protocol) answering a real
`kubernetes.client.ApiClient` from a small in-memory state: discovery, server-side apply (merged
into the stored object: fields it omits stay), label-selected list and delete of any namespaced
kind, pods, events, logs, evictions with a PodDisruptionBudget rule, namespaces that terminate,
APIService status. No controller runs: a Deployment or StatefulSet is "rolled out" the moment it
is applied (its pods topped up to its replica count and ready, its own `name-i` pods above it
deleted; without `spec.replicas` the count is the HPA's minReplicas), and port-forwards reach
`upstream`, a local server. With `run_jobs`, a Job runs the moment it is applied: its pod's
command runs here, to its end, as a child process (`python` is this interpreter, the backend's
Service `http://backend:3000` is `upstream`), its output the pod's log. Every request is
recorded; `rules()` gives the (verb, group, resource) checks the API server's RBAC would make
for them, with their namespace (`lab.rbac.Rule`). It proves which calls the lab makes and how it
reads the answers; it proves nothing about a cluster (those tests carry the `kind` marker).

For the classroom rehearsal it also plays the workshop's cluster: namespaces listed by label,
cluster-scoped admission policies, TokenRequests, and callers told apart by their bearer token
(`admin_token`: unrestricted; a token it issued: that ServiceAccount's `Gate`, built from the
Roles, policy and quotas provision applied, enforced on every request and recorded in
`denied`; the rules a gate enforces are tests/plugins/fake_kube_gate.py). With no token issued,
nothing is enforced (the other tests' default).

Over 400 lines on purpose: one request handler answers every resource from one shared state, as
an API server does (apply, list, delete, pods, logs, evictions, port-forwards and tokens all
read and write the same objects); each resource's part is short.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import itertools
import json
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fake_kube_gate import Gate
from kubernetes import client

from lab.k8s import NamespaceClient
from lab.rbac import Request, Rule

NS = "ironclad-demo"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONNECT_SUBRESOURCES = {"portforward", "exec", "attach"}
VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update"}

# group/version -> (resource, kind, namespaced): what discovery answers.
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("nodes", "Node", False),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("pods", "Pod", True),
        ("events", "Event", True),
        ("resourcequotas", "ResourceQuota", True),
        ("limitranges", "LimitRange", True),
    ],
    "apps/v1": [("deployments", "Deployment", True), ("statefulsets", "StatefulSet", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],  # lesson 08's backups
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True)],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    "apiregistration.k8s.io/v1": [("apiservices", "APIService", False)],
    "admissionregistration.k8s.io/v1": [
        ("validatingadmissionpolicies", "ValidatingAdmissionPolicy", False),
        ("validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", False),
    ],
}
CLUSTER_SCOPED = {r for resources in RESOURCES.values() for r, _, namespaced in resources
                  if not namespaced} - {"namespaces", "nodes", "apiservices"}  # fmt: skip


def pod_json(
    name: str,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    waiting: str | None = None,
    restarts: int = 0,
    namespace: str = NS,
) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
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


def event_json(
    reason: str, kind: str, name: str, message: str, when: datetime | None = None
) -> dict[str, Any]:
    """A Warning event about `kind/name`, last seen at `when` (None: whenever it is listed, as
    an event that keeps recurring while the wait polls; a time taken when the test starts can
    fall before a wait that a busy machine begins seconds later, outside `k8s.EVENT_SLACK`)."""
    return {
        "metadata": {"name": f"{name}.{reason}", "namespace": NS},
        "involvedObject": {"kind": kind, "name": name},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "lastTimestamp": when.isoformat() if when else None,
        "count": 1,
    }


# metav1.StatusReason of the refusals a test sets in `FakeApiServer.refuse`
STATUS_REASONS = {401: "Unauthorized", 404: "NotFound", 409: "Conflict", 422: "Invalid"}


def status(code: int, message: str, reason: str = "") -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


@dataclass(frozen=True)
class Call:
    """One recorded request: where it went and what RBAC would check for it."""

    method: str
    path: str
    query: dict[str, str]
    upgrade: bool  # a websocket (connect) request
    created: bool  # a server-side apply that created its object
    body: Any = field(default=None, compare=False)  # what was sent (admission reads it)
    caller: str = field(default="", compare=False)  # who sent it (its bearer token)

    def authorization(self) -> tuple[frozenset[Rule], str | None] | None:
        """(rules, namespace) the API server's authorizer checks; None for discovery
        (/api, /apis, /version: granted to every authenticated user by system:discovery).

        Mirrors the API server's request-info rules: GET on a name is get, without one list
        (watch with ?watch); a namespace's own URL is in that namespace; a websocket connect is
        get and (Kubernetes >= 1.35) create; an apply that creates also needs create.
        """
        parts = self.path.strip("/").split("/")
        if parts[0] == "api" and len(parts) > 2:
            group, rest = "", parts[2:]
        elif parts[0] == "apis" and len(parts) > 3:
            group, rest = parts[1], parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) > 1:
            namespace = rest[1]
            rest = rest if len(rest) == 2 else rest[2:]
        resource, name = rest[0], rest[1] if len(rest) > 1 else None
        if len(rest) > 2:
            resource = f"{resource}/{rest[2]}"
        if self.method == "GET":
            verbs = {"get"} if name else {"watch" if self.query.get("watch") else "list"}
        elif self.method == "DELETE":
            verbs = {"delete" if name else "deletecollection"}
        else:
            verbs = {VERBS[self.method]}
        if self.upgrade:
            verbs = {"get", "create"}
        if self.created:
            verbs.add("create")
        return frozenset(Rule(v, group, resource) for v in verbs), namespace

    def requests(self) -> list[Request]:
        """`authorization()` as RBAC requests, with the object's name (a POST to a collection,
        a list and a deletecollection carry none; an apply's implied create carries it)."""
        checked = self.authorization()
        if checked is None:
            return []
        rules, namespace = checked
        parts = self.path.strip("/").split("/")
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if rest[0] == "namespaces" and len(rest) > 2:
            rest = rest[2:]
        name = rest[1] if len(rest) > 1 else None  # a namespace's own URL: its name
        return [Request(r.verb, r.group, r.resource, namespace, name) for r in sorted(rules)]


@dataclass
class Store:
    """Applied objects by (group/version, resource, namespace, name)."""

    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)

    def of(self, gv: str, resource: str, namespace: str) -> list[dict[str, Any]]:
        return [
            o for (g, r, n, _), o in self.objects.items() if (g, r, n) == (gv, resource, namespace)
        ]


class FakeApiServer:
    """Stateful, recording fake of the API endpoints the lab uses (module docstring)."""

    now = NOW
    pod_json = staticmethod(pod_json)
    deployment_json = staticmethod(deployment_json)
    event_json = staticmethod(event_json)

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []
        self.deployments: dict[str, dict[str, Any]] = {}
        self.statefulsets: dict[str, dict[str, Any]] = {}
        self.store = Store()
        self.min_available: dict[str, int] = {}  # PDB: selector "app=x" -> minAvailable
        self.requests: list[tuple[str, str]] = []
        self.calls: list[Call] = []
        self.probe_phase = "Succeeded"  # what a created (probe) pod ends as
        self.namespaces = {NS}
        self.namespace_labels: dict[str, dict[str, str]] = {
            NS: {"pod-security.kubernetes.io/enforce": "restricted"}
        }
        self.terminating: dict[str, int] = {}  # namespace -> reads left before it is gone
        self.applied: dict[str, dict[str, Any]] = {}  # path -> last server-side-applied body
        self.patches: list[tuple[str, str, dict[str, str]]] = []  # path, content type, query
        self.api_services: dict[str, list[dict[str, str]]] = {}  # name -> status.conditions
        self.refuse: dict[Rule, tuple[int, str]] = {}  # a call needing this rule gets this answer
        self.pod_waiting: str | None = None  # the state of the pods workloads get (None: ready)
        self.upstream: tuple[str, int] | None = None  # where port-forwards connect
        self.cluster_objects: dict[tuple[str, str], dict[str, Any]] = {}  # (resource, name)
        self.admin_token = "admin"
        self.gates: dict[str, Gate] = {}  # token -> the ServiceAccount's rights
        self.issued: dict[str, str] = {}  # token -> "namespace/serviceaccount"
        self.token_requests: list[dict[str, Any]] = []  # TokenRequest bodies
        self.denied: list[tuple[str, str, str, str]] = []  # (caller, method, path, why)
        self.run_jobs = False  # a Job's pod runs its command here (see the module docstring)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

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
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def api_client(self) -> client.ApiClient:
        return client.ApiClient(client.Configuration(host=self.url))

    def rules(self) -> set[tuple[Rule, str | None]]:
        """Every (rule, namespace) the recorded requests needed."""
        out: set[tuple[Rule, str | None]] = set()
        for call in self.calls:
            checked = call.authorization()
            if checked is not None:
                out |= {(rule, checked[1]) for rule in checked[0]}
        return out

    # --- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"null")
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        self.requests.append((method, url.path))
        parts = url.path.strip("/").split("/")
        existed = method == "PATCH" and self.exists(parts)
        created = (
            method == "PATCH"
            and not existed
            and "apply-patch" in (request.headers.get("Content-Type") or "")
        )
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        call = Call(method, url.path, query, upgrade, created, body, token)
        self.calls.append(call)
        content_type = request.headers.get("Content-Type", "")
        if method == "PATCH":
            self.patches.append((url.path, content_type, query))
        answer = self.refused(call) or self.enforced(call)
        if upgrade and answer is None:
            self.port_forward(request, int(query["ports"]))
            return
        code, payload = answer or self.route(
            method, parts, query, body, "apply-patch" in content_type
        )
        if code == 200 and created:
            code = 201
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        request.send_response(code)
        request.send_header(
            "Content-Type", "text/plain" if isinstance(payload, str) else "application/json"
        )
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def refused(self, call: Call) -> tuple[int, Any] | None:
        checked = call.authorization()
        for rule in checked[0] if checked else ():
            if rule in self.refuse:
                code, message = self.refuse[rule]
                return status(code, message, STATUS_REASONS.get(code, "Forbidden"))
        return None

    def enforced(self, call: Call) -> tuple[int, Any] | None:
        """Once a token was issued: 401 for unknown callers, the caller's `Gate` for the rest
        (the admin passes); every refusal is recorded in `denied`."""
        if not self.gates or call.caller == self.admin_token:
            return None
        gate = self.gates.get(call.caller)
        if gate is None:
            self.denied.append((call.caller, call.method, call.path, "unknown token"))
            return status(401, "Unauthorized", "Unauthorized")
        body = call.body if isinstance(call.body, dict) else None
        for request in call.requests():
            why = gate.refusal(request, body)
            if why is not None:
                self.denied.append((call.caller, call.method, call.path, why))
                who = self.issued[call.caller]
                return status(403, f"{request.resource} is forbidden for {who}: {why}", "Forbidden")
        return None

    def issue_token(self, namespace: str, account: str, body: dict[str, Any]) -> tuple[int, Any]:
        """A TokenRequest: a token for the ServiceAccount, whose rights are the Roles bound to
        it (and the policy and quotas) as provision applied them."""
        if ("v1", "serviceaccounts", namespace, account) not in self.store.objects:
            return self.not_found(account)
        self.token_requests.append(body)
        token = f"token-of-{namespace}"
        applied = [o for o in self.store.objects.values() if "kind" in o]
        namespaces = [
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": n, "labels": self.namespace_labels.get(n, {})}}
            for n in sorted(self.namespaces)
        ]  # fmt: skip
        self.gates[token] = Gate.of_learner(
            [*applied, *namespaces, *self.cluster_objects.values()], namespace
        )
        self.issued[token] = f"{namespace}/{account}"
        expires = "2026-01-01T08:00:00Z"
        return 201, {**body, "status": {"token": token, "expirationTimestamp": expires}}

    def tick_terminating(self) -> None:
        """Every read of namespaces brings terminating ones closer to gone (with their objects)."""
        for name in list(self.terminating):
            self.terminating[name] -= 1
            if self.terminating[name] < 0:
                del self.terminating[name]
                self.namespaces.discard(name)
                self.namespace_labels.pop(name, None)
                for key in [k for k in self.store.objects if k[2] == name]:
                    del self.store.objects[key]

    def namespace_json(self, name: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "labels": self.namespace_labels.get(name, {})}
        if name in self.terminating:
            metadata["deletionTimestamp"] = NOW.isoformat()
        return {"kind": "Namespace", "apiVersion": "v1", "metadata": metadata}

    def cluster_scoped(
        self, method: str, parts: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any] | None:
        """Apply, read, list by label and delete of the cluster-scoped kinds in CLUSTER_SCOPED."""
        if parts[0] != "apis" or len(parts) not in (4, 5) or parts[3] not in CLUSTER_SCOPED:
            return None
        resource_name = parts[3]
        if len(parts) == 4 and method == "GET":
            items = [
                o for (r, _), o in sorted(self.cluster_objects.items())
                if r == resource_name and self.matches(o, query.get("labelSelector"))
            ]  # fmt: skip
            return 200, {"kind": "List", "apiVersion": "/".join(parts[1:3]), "metadata": {},
                         "items": items}  # fmt: skip
        key = (resource_name, parts[4]) if len(parts) == 5 else None
        if key is None:
            return None
        if method == "PATCH":
            stored = self.cluster_objects.setdefault(key, {})
            merge(stored, body)
            return 200, stored
        if key not in self.cluster_objects:
            return self.not_found(parts[4])
        if method == "DELETE":
            del self.cluster_objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        return 200, self.cluster_objects[key]

    def exists(self, parts: list[str]) -> bool:
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 4:
            return parts[3] in self.namespaces
        if parts[0] == "apis" and len(parts) == 5 and parts[3] in CLUSTER_SCOPED:
            return (parts[3], parts[4]) in self.cluster_objects
        key = self.key(parts)
        return key is not None and key in self.store.objects

    @staticmethod
    def key(parts: list[str]) -> tuple[str, str, str, str] | None:
        """(group/version, resource, namespace, name) of an object URL; namespace "" for a
        cluster-scoped one (a ClusterRole)."""
        gv_len = 2 if parts[0] == "api" else 3
        rest = parts[gv_len:]
        if len(rest) == 2 and rest[0] != "namespaces":
            return "/".join(parts[1:gv_len]), rest[0], "", rest[1]
        if len(rest) != 4 or rest[0] != "namespaces":
            return None
        return "/".join(parts[1:gv_len]), rest[2], rest[1], rest[3]

    @staticmethod
    def collection(parts: list[str]) -> tuple[str, str, str] | None:
        """(group/version, resource, namespace) of a namespaced collection URL."""
        gv_len = 2 if parts[0] == "api" else 3
        rest = parts[gv_len:]
        if len(rest) != 3 or rest[0] != "namespaces":
            return None
        return "/".join(parts[1:gv_len]), rest[2], rest[1]

    # --- routes -------------------------------------------------------------------------------
    def route(
        self, method: str, parts: list[str], query: dict[str, str], body: Any, apply: bool
    ) -> tuple[int, Any]:
        match method, parts:
            case "GET", ["api", "v1", "namespaces", namespace, "pods"]:
                selector = query.get("labelSelector")
                items = [
                    p
                    for p in self.pods.values()
                    if p["metadata"].get("namespace", NS) == namespace and self.matches(p, selector)
                ]
                return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
            case "POST", ["api", "v1", "namespaces", namespace, "pods"]:
                name = body["metadata"]["name"]
                if query.get("dryRun"):
                    return 201, body
                self.pods[name] = {
                    **body,
                    "metadata": {**body["metadata"], "namespace": namespace},
                    "status": {"phase": self.probe_phase},
                }
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
                    "items": [self.recurring(event) for event in self.events],
                }
            case "GET", ["api", "v1", "nodes"]:
                return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": []}
            case "GET", ["api", "v1", "namespaces"]:
                self.tick_terminating()
                items = [
                    self.namespace_json(n) for n in sorted(self.namespaces)
                    if self.matches(self.namespace_json(n), query.get("labelSelector"))
                ]  # fmt: skip
                return 200, {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {},
                             "items": items}  # fmt: skip
            case "POST", ["api", "v1", "namespaces", namespace, "serviceaccounts", name, "token"]:
                return self.issue_token(namespace, name, body)
            case "DELETE", ["api", "v1", "namespaces", name]:
                if name not in self.namespaces:
                    return self.not_found(name)
                self.terminating[name] = 2  # still there for the next two reads
                return 200, {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}}
            case "GET", ["api", "v1", "namespaces", name]:
                return self.read_namespace(name)
            case "GET", ["version"]:
                return 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.2"}
            case "GET", ["apis"]:
                groups = [gv.split("/") for gv in RESOURCES if "/" in gv]
                return 200, {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [group(name, version) for name, version in groups],
                }
            case "GET", ["api", "v1"] | ["apis", _, _]:
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
                labels = body.get("metadata", {}).get("labels")
                if labels is not None:
                    self.namespace_labels[name] = dict(labels)
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
            case "GET", ["apis", "apps", "v1", "namespaces", _, "deployments"]:
                return 200, self.list_of("DeploymentList", self.deployments, query)
            case "GET", ["apis", "apps", "v1", "namespaces", _, "statefulsets"]:
                return 200, self.list_of("StatefulSetList", self.statefulsets, query)
            case "GET", ["apis", "apps", "v1", "namespaces", namespace, "deployments", name]:
                found = self.deployments.get(name)
                mine = found and found["metadata"].get("namespace", NS) == namespace
                return (200, found) if mine else self.not_found(name)
            case "GET", ["apis", "apps", "v1", "namespaces", namespace, "statefulsets", name]:
                found = self.statefulsets.get(name)
                mine = found and found["metadata"].get("namespace", NS) == namespace
                return (200, found) if mine else self.not_found(name)
            case "PATCH", ["apis", "apps", "v1", "namespaces", _, "deployments", name] if not apply:
                return self.merge_patch(self.deployments[name], body)
        return self.generic(method, parts, query, body)

    def generic(
        self, method: str, parts: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        """Apply, read, label-selected list and delete of any namespaced object (and of the
        cluster-scoped kinds in CLUSTER_SCOPED)."""
        answered = self.cluster_scoped(method, parts, query, body)
        if answered is not None:
            return answered
        where = self.collection(parts)
        if method == "GET" and where is not None:
            selector = query.get("labelSelector")
            items = [o for o in self.store.of(*where) if self.matches(o, selector)]
            return 200, {"kind": "List", "apiVersion": where[0], "metadata": {}, "items": items}
        key = self.key(parts)
        if key is None:
            return 404, {"kind": "Status", "code": 404, "message": f"no route {method} {parts}"}
        _gv, resource_name, namespace, name = key
        if method == "PATCH":
            if namespace and (namespace not in self.namespaces or namespace in self.terminating):
                return status(403, f"namespace {namespace} is being terminated", "Forbidden")
            self.applied[f"{resource_name}/{namespace}/{name}"] = body
            return 200, self.server_side_apply(key, body)
        if method == "GET" and key in self.store.objects:
            return 200, self.store.objects[key]
        if method == "DELETE" and key in self.store.objects:
            del self.store.objects[key]
            self.remove_workload(resource_name, name)
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        return self.not_found(name)

    def server_side_apply(self, key: tuple[str, str, str, str], body: Any) -> dict[str, Any]:
        """`body` merged into the stored object (the fields it omits, such as the replicas
        `kubectl scale` set, stay); a workload rolls out at once. The stored object."""
        stored = self.store.objects.setdefault(key, {})
        merge(stored, body)
        self.roll_out(key, key[1], stored)
        return stored

    def put(self, obj: dict[str, Any]) -> None:
        """Seed the live state: `obj` (in NS unless it names its namespace) as if applied."""
        gv, metadata = obj["apiVersion"], obj["metadata"]
        resource_name = next(r for r, kind, _ in RESOURCES[gv] if kind == obj["kind"])
        self.server_side_apply(
            (gv, resource_name, metadata.get("namespace", NS), metadata["name"]),
            copy.deepcopy(obj),
        )

    def read_namespace(self, name: str) -> tuple[int, Any]:
        if name not in self.namespaces:
            return self.not_found(name)
        answer = self.namespace_json(name)
        self.tick_terminating()
        return 200, answer

    # --- what controllers would do ------------------------------------------------------------
    def roll_out(
        self, key: tuple[str, str, str, str], resource_name: str, body: dict[str, Any]
    ) -> None:
        """A workload with its pods and a complete status (the HPA's minReplicas, else 1)."""
        if resource_name == "horizontalpodautoscalers":  # the HPA scales its target at once
            floor = int(body["spec"].get("minReplicas", 1))
            self.store.objects[key]["status"] = {"currentReplicas": floor, "desiredReplicas": floor}
            target = self.deployments.get(body["spec"]["scaleTargetRef"]["name"])
            if target is not None:
                spec = {k: v for k, v in target["spec"].items() if k != "replicas"}
                self.roll_out(key, "deployments", {**target, "spec": spec})
            return
        if resource_name == "jobs" and self.run_jobs:
            self.run_job(key[2], body)
            return
        if resource_name not in ("deployments", "statefulsets"):
            return
        name = body["metadata"]["name"]
        given = body["spec"].get("replicas")
        replicas = self.hpa_floor(name) if given is None else int(given)  # 0 scales down
        workload = copy.deepcopy(body)
        workload["spec"]["replicas"] = replicas
        workload["metadata"]["generation"] = 1
        workload["status"] = {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "currentRevision": "r1",
            "updateRevision": "r1",
        }
        (self.deployments if resource_name == "deployments" else self.statefulsets)[name] = workload
        labels = body["spec"]["template"]["metadata"]["labels"]
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        running = sum(
            1
            for p in self.pods.values()
            if p["metadata"].get("namespace", NS) == key[2] and self.matches(p, selector)
        )
        mine = [  # the pods it made itself (`name-i`), not others with the same labels
            pod
            for pod, p in self.pods.items()
            if pod.startswith(f"{name}-")
            and p["metadata"].get("namespace", NS) == key[2]
            and self.matches(p, selector)
        ]
        for pod in sorted(mine, reverse=True)[: max(0, len(mine) - replicas)]:  # scaled down
            del self.pods[pod]
        free = (f"{name}-{i}" for i in range(replicas * 2) if f"{name}-{i}" not in self.pods)
        for pod in itertools.islice(free, max(0, replicas - running)):  # topped up, new names
            ready = self.pod_waiting is None
            self.pods[pod] = pod_json(pod, ready, dict(labels), self.pod_waiting, namespace=key[2])

    def run_job(self, namespace: str, job: dict[str, Any]) -> None:
        """The Job's one pod, run to its end here: Succeeded or Failed by its exit code, its
        output the pod's log (the Job controller's and the kubelet's part, in one step)."""
        name = job["metadata"]["name"]
        template = job["spec"]["template"]
        argv = list(template["spec"]["containers"][0]["command"])
        argv[0] = sys.executable if argv[0] == "python" else argv[0]
        assert self.upstream is not None, "run_jobs needs the `upstream` fixture"
        service = "http://{}:{}".format(*self.upstream)
        argv = [a.replace("http://backend:3000", service) for a in argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        pod = f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:5]}"
        labels = {**template["metadata"].get("labels", {}), "job-name": name}
        self.pods[pod] = pod_json(pod, False, labels, namespace=namespace)
        self.pods[pod]["status"]["phase"] = "Succeeded" if done.returncode == 0 else "Failed"
        self.logs[pod] = done.stdout + done.stderr

    def hpa_floor(self, workload: str) -> int:
        for (_, resource_name, _, _), hpa in self.store.objects.items():
            target = hpa.get("spec", {}).get("scaleTargetRef", {}).get("name")
            if resource_name == "horizontalpodautoscalers" and target == workload:
                return int(hpa["spec"].get("minReplicas", 1))
        return 1

    def remove_workload(self, resource_name: str, name: str) -> None:
        if resource_name == "jobs":  # the garbage collector's part: the Job's pods go too
            for pod in [p for p, o in self.pods.items() if self.matches(o, f"job-name={name}")]:
                del self.pods[pod]
            return
        workloads = {"deployments": self.deployments, "statefulsets": self.statefulsets}
        if resource_name in workloads and workloads[resource_name].pop(name, None):
            for pod in [p for p in self.pods if p.rsplit("-", 1)[0] == name]:
                del self.pods[pod]

    def merge_patch(self, target: dict[str, Any], patch: dict[str, Any]) -> tuple[int, Any]:
        merge(target, patch)
        target["metadata"]["generation"] += 1
        target["status"]["observedGeneration"] = target["metadata"]["generation"]
        return 200, target

    def list_of(
        self, kind: str, items: dict[str, dict[str, Any]], query: dict[str, str]
    ) -> dict[str, Any]:
        """The workloads `items` a list with the query's label selector returns."""
        selector = query.get("labelSelector")
        return {
            "kind": kind,
            "apiVersion": "apps/v1",
            "metadata": {},
            "items": [item for item in items.values() if self.matches(item, selector)],
        }

    def matches(self, obj: dict[str, Any], selector: str | None) -> bool:
        """Whether `obj`'s labels satisfy a selector of `k=v`, `k` and `!k` terms."""
        labels = obj["metadata"].get("labels") or {}
        for term in (selector or "").split(","):
            if term.startswith("!"):
                if term[1:] in labels:
                    return False
            elif "=" in term:
                key, value = term.split("=")
                if labels.get(key) != value:
                    return False
            elif term and term not in labels:
                return False
        return True

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
                    return status(
                        429,
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        "TooManyRequests",
                    )
        del self.pods[name]
        return 201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}

    @staticmethod
    def recurring(event: dict[str, Any]) -> dict[str, Any]:
        """`event` as listed now: one without a time (`event_json(when=None)`) is seen now."""
        if event["lastTimestamp"] is not None:
            return event
        return {**event, "lastTimestamp": datetime.now(UTC).isoformat()}

    def not_found(self, name: str) -> tuple[int, Any]:
        return status(404, f'"{name}" not found', "NotFound")

    # --- port-forward (websocket, channel protocol v4/v5) -------------------------------------
    def port_forward(self, request: BaseHTTPRequestHandler, port: int) -> None:
        """Answer the websocket upgrade, announce `port` on the data and error channels, then
        pipe channel 0 to `upstream` until either side closes."""
        key = request.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest())
        protocol = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[-1].strip()
        request.send_response(101)
        request.send_header("Upgrade", "websocket")
        request.send_header("Connection", "Upgrade")
        request.send_header("Sec-WebSocket-Accept", accept.decode())
        request.send_header("Sec-WebSocket-Protocol", protocol)
        request.end_headers()
        request.wfile.flush()
        sock = request.connection
        announce = port.to_bytes(2, "little")
        send_frame(sock, b"\x00" + announce)
        send_frame(sock, b"\x01" + announce)
        assert self.upstream is not None, "set fake.upstream before forwarding"
        upstream = socket.create_connection(self.upstream)

        def back() -> None:
            with contextlib.suppress(OSError):  # the client side closed first
                while data := upstream.recv(65536):
                    send_frame(sock, b"\x00" + data)
            send_frame(sock, b"", opcode=0x8)

        threading.Thread(target=back, daemon=True).start()
        try:
            while (frame := read_frame(request.rfile)) is not None:
                opcode, data = frame
                if opcode == 0x8:
                    break
                if opcode == 0x2 and data[:1] == b"\x00" and len(data) > 1:
                    upstream.sendall(data[1:])
        finally:
            upstream.close()
        request.close_connection = True


def send_frame(sock: socket.socket, payload: bytes, opcode: int = 0x2) -> None:
    """One unmasked server frame (FIN set)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + size.to_bytes(2, "big")
    else:
        head += bytes([127]) + size.to_bytes(8, "big")
    with contextlib.suppress(OSError):
        sock.sendall(head + payload)


def read_frame(stream: Any) -> tuple[int, bytes] | None:
    """(opcode, payload) of one masked client frame; None at EOF."""
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, size = head[0] & 0x0F, head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(stream.read(2), "big")
    elif size == 127:
        size = int.from_bytes(stream.read(8), "big")
    mask = stream.read(4) if head[1] & 0x80 else b"\x00\x00\x00\x00"
    data = stream.read(size)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


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
def gate_of() -> Any:
    """`Gate.of_learner`: a learner's gate from the objects provision made."""
    return Gate.of_learner


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def cluster(fake: FakeApiServer) -> NamespaceClient:
    return NamespaceClient(NS, fake.api_client(), probe_image="ironclad-backend:lab")


@pytest.fixture
def discovery_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dynamic client caches discovery in the temp dir: keep it in this test's."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


class _Healthy(BaseHTTPRequestHandler):
    """Answers 200 to every GET (what the forwards' readiness paths expect) and stands in for
    the backend's chaos controls: chaos is off, and every POST (reset's) answers that."""

    CHAOS_OFF = b'{"enabled": false, "latency_ms": 0, "error_ratio": 0.0}'

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer(self.CHAOS_OFF)

    def do_GET(self) -> None:
        self.answer(self.CHAOS_OFF if self.path == "/api/chaos" else b'{"status": "ok"}')

    def answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream(fake: FakeApiServer) -> Iterator[tuple[str, int]]:
    """A local server behind every port-forward of `fake` (it stands in for the pods)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    fake.upstream = ("127.0.0.1", server.server_port)
    yield fake.upstream
    server.shutdown()
    server.server_close()


@pytest.fixture
def kubeconfig(fake: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """KUBECONFIG with one context, `learner`, whose server is `fake`; its context name."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
                "users": [{"name": "learner", "user": {"token": "t"}}],
                "contexts": [
                    {
                        "name": "learner",
                        "context": {"cluster": "fake", "user": "learner", "namespace": NS},
                    }
                ],
                "current-context": "learner",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return "learner"
