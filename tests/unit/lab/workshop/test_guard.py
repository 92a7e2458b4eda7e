"""The workshop's safety model, offline: the admission policy (lab.workshop.guard) is valid and
its CEL compiles (cel-python); the learner's gate (tests/plugins/fake_kube_api.py: the provisioned
Roles through lab.rbac's evaluator, RBAC's escalation check, the policy's CEL evaluated, the
quota) admits everything the lab applies and refuses every escalation a curious learner tries,
each by the layer docs/workshop.md names. The same policy runs on a real API server in the
workflow's `workshop-kind` job; nothing here proves the API server's own CEL environment beyond
what cel-python shares with it (standard CEL, no Kubernetes extension library is used)."""

from __future__ import annotations

import copy
import shutil
from typing import Any

import celpy
import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from lab.k8s import probe_pod
from lab.loadgen import job_manifest
from lab.manifests import render
from lab.rbac import RBAC_GROUP, Request, role_rules
from lab.workshop.capacity import Footprint
from lab.workshop.guard import VALIDATIONS
from lab.workshop.objects import Plan, all_objects
from lab.workshop.provision import make_plan

L1, L2 = "learner-01", "learner-02"
SIZE = Footprint(1620, 2240, 8700, 5504, 17, 1, 1)
EGRESS = (
    {"to": [{"podSelector": {"matchLabels": {"app": "backend"}}}],
     "ports": [{"protocol": "TCP", "port": 3000}]},
)  # fmt: skip
PLAN = Plan("ws", (L1, L2), SIZE, SIZE, {"cpu": "1", "memory": "1Gi"}, "ab" * 16, EGRESS)
OBJECTS = all_objects(PLAN)
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")


def policy() -> dict[str, Any]:
    return next(o for o in OBJECTS if o["kind"] == "ValidatingAdmissionPolicy")


def test_every_validation_compiles_and_a_broken_one_does_not() -> None:
    env = celpy.Environment()
    for validation in policy()["spec"]["validations"]:
        env.program(env.compile(validation["expression"]))
    assert len(policy()["spec"]["validations"]) == len(VALIDATIONS)
    with pytest.raises(celpy.CELParseError):
        env.compile("object.spec.serviceAccountName == 'learner' &&")


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0"])
def test_the_policy_and_its_binding_validate_against_the_api_schema(version: str) -> None:
    """Strict: an unknown or misplaced field fails (1.30: ValidatingAdmissionPolicy is GA)."""
    for obj in OBJECTS[:2]:
        kubernetes_validate.validate(obj, version, strict=True)
    broken = copy.deepcopy(policy())
    broken["spec"]["validations"][0]["expresion"] = "true"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def apply_as_learner(gate: Any, objects: list[dict[str, Any]], namespace: str) -> list[str]:
    """Server-side apply of `objects` by the learner (a PATCH that creates: create + patch
    checked with the object's name); the refusals."""
    refused = []
    for obj in objects:
        group = obj["apiVersion"].rpartition("/")[0]
        resource = {"NetworkPolicy": "networkpolicies"}.get(
            obj["kind"], obj["kind"].lower() + ("es" if obj["kind"].endswith("s") else "s")
        )
        for verb in ("patch", "create"):
            request = Request(verb, group, resource, namespace, obj["metadata"]["name"])
            if reason := gate.refusal(request, obj):
                refused.append(f"{obj['kind']}/{obj['metadata']['name']}: {reason}")
    return refused


@needs_kubectl
def test_the_learner_may_apply_everything_the_cluster_target_applies(gate_of: Any) -> None:
    from lab.settings import get_settings

    stack = render("cluster", get_settings(), namespace=L1)
    kinds = {o["kind"] for o in stack}
    assert {"Role", "RoleBinding", "Deployment", "Secret", "Service"} <= kinds
    gate = gate_of(OBJECTS, L1)
    assert apply_as_learner(gate, stack, L1) == []
    probe = ApiClient().sanitize_for_serialization(  # type: ignore[no-untyped-call]
        probe_pod("lab-probe-1", "http://backend:3000", {}, "img")
    )
    for namespace in (L1, f"{L1}-peer"):
        assert gate.refusal(Request("create", "", "pods", namespace), probe) is None


@needs_kubectl
def test_the_provisioned_objects_of_a_real_plan_pass_their_own_policy(gate_of: Any) -> None:
    from lab.settings import get_settings

    plan = make_plan(get_settings(), 2, "learner-", "ws", "cd" * 16)
    objects = all_objects(plan)
    admission = gate_of(objects, L1).admission
    namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}
    checked = 0
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        resource = obj["kind"].lower() + "s"
        if namespace and admission.matches(
            obj["apiVersion"].rpartition("/")[0], resource, "CREATE"
        ):
            group = obj["apiVersion"].rpartition("/")[0]
            assert admission.refusal(group, resource, "CREATE", obj, namespaces[namespace]) is None
            checked += 1
    assert checked == 8  # a Role and a RoleBinding in each of the four namespaces


def role_binding(name: str, role: str, *subjects: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": L1},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
        "subjects": list(subjects),
    }


def sa(name: str, namespace: str = L1) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


PROMETHEUS_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "prometheus", "namespace": L1},
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
}


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": L1},
            "spec": {"containers": [{"name": "c", "image": "x"}], **spec}}  # fmt: skip


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": L1},
            "spec": {"ports": [{"port": 80}], **spec}}  # fmt: skip


def create(resource: str, name: str | None, group: str = "", namespace: str | None = L1) -> Request:
    return Request("create", group, resource, namespace, name)


# (what a curious learner tries, the request, its body, the layer that must refuse it)
ATTEMPTS: list[tuple[str, Request, dict[str, Any] | None, str]] = [
    ("bind their Role to every authenticated user",
     create("rolebindings", "prometheus", RBAC_GROUP),
     role_binding("prometheus", "prometheus",
                  {"kind": "Group", "name": "system:authenticated", "apiGroup": RBAC_GROUP}),
     "admission"),
    ("bind their Role to anonymous users",
     create("rolebindings", "prometheus", RBAC_GROUP),
     role_binding("prometheus", "prometheus",
                  {"kind": "User", "name": "system:anonymous", "apiGroup": RBAC_GROUP}),
     "admission"),
    ("bind their Role to another learner's account",
     create("rolebindings", "prometheus", RBAC_GROUP),
     role_binding("prometheus", "prometheus", sa("learner", L2)), "admission"),
    ("give Prometheus' account the learner Role (a pod keeps it past expiry)",
     create("rolebindings", "prometheus", RBAC_GROUP),
     role_binding("prometheus", "ironclad-learner", sa("prometheus")), "admission"),
    ("a RoleBinding of their own name", create("rolebindings", "mine", RBAC_GROUP),
     role_binding("mine", "prometheus", sa("prometheus")), "RBAC"),
    ("POST a RoleBinding (no name to check)", create("rolebindings", None, RBAC_GROUP),
     role_binding("x", "prometheus", sa("prometheus")), "RBAC"),
    ("rewrite the instructor's Role",
     Request("patch", RBAC_GROUP, "roles", L1, "ironclad-learner"),
     {**PROMETHEUS_ROLE, "metadata": {"name": "ironclad-learner", "namespace": L1}}, "RBAC"),
    ("grow Prometheus' Role to all the learner's rights",
     create("roles", "prometheus", RBAC_GROUP),
     {**PROMETHEUS_ROLE, "rules": role_rules()}, "admission"),
    ("a Role with rights the learner lacks (TokenRequest)",
     create("roles", "prometheus", RBAC_GROUP),
     {**PROMETHEUS_ROLE, "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                                    "verbs": ["create"]}]},
     "RBAC escalation check"),
    ("a Role with wildcards", create("roles", "prometheus", RBAC_GROUP),
     {**PROMETHEUS_ROLE, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
     "RBAC escalation check"),
    ("the bind and escalate verbs", Request("bind", RBAC_GROUP, "roles", L1, "ironclad-learner"),
     None, "RBAC"),
    ("a pod running as the learner", create("pods", None), pod(serviceAccountName="learner"),
     "admission"),
    ("the same through the deprecated field", create("pods", None),
     pod(serviceAccount="learner"), "admission"),
    ("a never-expiring token Secret", create("secrets", "keep"),
     {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
      "metadata": {"name": "keep", "namespace": L1,
                   "annotations": {"kubernetes.io/service-account.name": "learner"}}},
     "admission"),
    ("a token from the TokenRequest API", create("serviceaccounts/token", "learner"), None,
     "RBAC"),
    ("a Service with externalIPs", create("services", "s"), service(externalIPs=["1.2.3.4"]),
     "admission"),
    ("a NodePort Service", create("services", "s"), service(type="NodePort"), "admission"),
    ("a LoadBalancer Service", create("services", "s"), service(type="LoadBalancer"),
     "admission"),
    ("exec into a pod", create("pods/exec", "backend-0"), None, "RBAC"),
    ("attach to a pod", create("pods/attach", "backend-0"), None, "RBAC"),
    ("an ephemeral debug container", Request("patch", "", "pods/ephemeralcontainers", L1, "b"),
     None, "RBAC"),
    ("list the nodes", Request("list", "", "nodes", None), None, "RBAC"),
    ("list every namespace", Request("list", "", "namespaces", None), None, "RBAC"),
    ("read another learner's Secrets", Request("get", "", "secrets", L2, "postgres-secret"),
     None, "RBAC"),
    ("relabel their namespace out of the policy",
     Request("patch", "", "namespaces", L1, L1), None, "RBAC"),
    ("change their quota", Request("patch", "", "resourcequotas", L1, "ironclad-lab"), None,
     "RBAC"),
    ("delete the peer namespace's default deny",
     Request("delete", "networking.k8s.io", "networkpolicies", f"{L1}-peer", "default-deny-all"),
     None, "RBAC"),
    ("open the peer namespace with a policy",
     create("networkpolicies", "allow-all", "networking.k8s.io", f"{L1}-peer"), None, "RBAC"),
    ("a Service in the peer namespace", create("services", "s", "", f"{L1}-peer"), None, "RBAC"),
    ("a ClusterRoleBinding", create("clusterrolebindings", "mine", RBAC_GROUP, None), None,
     "RBAC"),
    ("delete the admission policy",
     Request("delete", "admissionregistration.k8s.io", "validatingadmissionpolicies", None,
             "ironclad-lab-ws"), None, "RBAC"),
    ("impersonate the instructor", Request("impersonate", "", "users", None, "admin"), None,
     "RBAC"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("attempt", "request_", "body", "layer"), ATTEMPTS, ids=[a[0] for a in ATTEMPTS]
)
def test_every_escalation_attempt_is_refused_by_its_layer(
    gate_of: Any, attempt: str, request_: Request, body: dict[str, Any] | None, layer: str
) -> None:
    gate = gate_of(OBJECTS, L1)
    gate.refusal(create("roles", "prometheus", RBAC_GROUP), PROMETHEUS_ROLE)  # the lab's Role
    refused = gate.refusal(request_, body)
    assert refused is not None, f"a learner may {attempt}"
    assert refused.split(":")[0] == layer, refused


def test_the_gate_allows_what_the_lab_does_so_refusals_are_not_blanket(gate_of: Any) -> None:
    gate = gate_of(OBJECTS, L1)
    assert gate.refusal(create("roles", "prometheus", RBAC_GROUP), PROMETHEUS_ROLE) is None
    binding = role_binding("prometheus", "prometheus", sa("prometheus"))
    assert gate.refusal(create("rolebindings", "prometheus", RBAC_GROUP), binding) is None
    assert gate.refusal(create("pods", None), pod(serviceAccountName="prometheus")) is None
    assert gate.refusal(create("services", "s"), service()) is None
    assert gate.refusal(create("secrets", "s"), {"type": "Opaque", "metadata": {}}) is None
    assert gate.refusal(Request("get", "", "namespaces", L1, L1)) is None  # its own labels
    assert gate.refusal(Request("create", "", "pods", f"{L1}-peer")) is None  # the probe


def test_the_quota_refuses_exposed_services_without_the_policy(gate_of: Any) -> None:
    gate = gate_of(OBJECTS, L1)
    gate.admission = None
    for kind in ("NodePort", "LoadBalancer"):
        assert (gate.refusal(create("services", "s"), service(type=kind)) or "").startswith("quota")
    assert gate.refusal(create("services", "s"), service(externalIPs=["1.2.3.4"])) is None


@needs_kubectl
def test_the_node_port_is_kinds_alone_and_a_workshop_refuses_it(gate_of: Any) -> None:
    """components/node-port (the host's load through kube-proxy) is in the kind render only;
    applied in a workshop namespace anyway, the admission policy refuses it (and without the
    policy, the quota), while the load-generator Job that stands in for it is admitted."""
    from lab.settings import get_settings

    settings = get_settings()
    kind, cluster = (
        render("kind", settings, namespace=L1),
        render("cluster", settings, namespace=L1),
    )
    exposed = [o for o in kind if o["kind"] == "Service" and o["spec"].get("type") == "NodePort"]
    assert [o["metadata"]["name"] for o in exposed] == ["backend-node-port"]
    assert [o for o in cluster if o["kind"] == "Service" and "type" in o["spec"]] == []
    gate = gate_of(OBJECTS, L1)
    refused = apply_as_learner(gate, exposed, L1)
    assert refused, "a workshop admitted the NodePort Service"
    assert all("admission" in r and "ClusterIP only" in r for r in refused), refused
    gate.admission = None
    assert all("quota" in r for r in apply_as_learner(gate, exposed, L1))
    gate = gate_of(OBJECTS, L1)
    job = job_manifest("backend-loadgen-1", "registry.example/ironclad-backend:1", rate=20,
                       requests=100)  # fmt: skip
    assert apply_as_learner(gate, [job], L1) == []
    pod = {"metadata": {"name": "backend-loadgen-1-x"}, **job["spec"]["template"]}
    assert gate.refusal(Request("create", "", "pods", L1), pod) is None  # its pod, admitted
