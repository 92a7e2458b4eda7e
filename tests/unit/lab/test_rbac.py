"""lab.rbac is minimal and sufficient: the learner Role equals what the lab really calls.

The cluster target and every `NamespaceClient` method a lesson uses run against the recording
fake API server (tests/plugins/fake_kube_api.py: a real HTTP server behind a real ApiClient; it
records the (verb, group, resource) each request needs, as the API server's authorizer does).
The recorded set must equal `LAB_CALLS`: a new call the table lacks fails here, and so does a
rule nothing uses any more. The fake is not a cluster; a real RBAC check of the provisioned Role
is the `kind` workflow job (a learner's kubeconfig running notebooks 00-05 and 08).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from lab import backup, rbac, service_load
from lab.k8s import NotFoundError, probe_pod
from lab.load import LoadPlan
from lab.loadgen import LOAD_LABEL, SERVICE_URL
from lab.manifests import render
from lab.rbac import Rule
from lab.reset import reset_cluster
from lab.settings import Settings, get_settings, peer_namespace
from lab.targets.cluster import ClusterTarget
from lab.targets.kind import with_live_image_stamp
from lab.workshop.capacity import Footprint
from lab.workshop.objects import Plan, all_objects
from lab.workshop.status import record_summary

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

NS = "learner-07"
CLIENT_APIS = {"core": "", "apps": "apps", "autoscaling": "autoscaling"}
CLIENT_VERBS = {
    "read": "get",
    "list": "list",
    "create": "create",
    "delete": "delete",
    "patch": "patch",
    "replace": "update",
}
SUBRESOURCES = ("log", "eviction", "status", "portforward")


def exercise_the_lab(fake: FakeApiServer, settings: Settings) -> None:
    """What a learner's session does: `up`, every NamespaceClient call of the lessons, the runner's
    record of a run for `workshop status`, `down`."""
    peer = peer_namespace(settings.namespace, shared=True)
    fake.namespaces |= {settings.namespace, peer}
    fake.namespace_labels[settings.namespace] = {"pod-security.kubernetes.io/enforce": "restricted"}
    target = ClusterTarget(settings)
    target.up()
    try:
        cluster = target.cluster
        assert cluster is not None
        backend = cluster.ready_pod_names("app=backend")
        cluster.pods()
        cluster.pod(backend[0])
        cluster.events()
        cluster.create_pod(probe_pod("dry", "tcp://x:1", {}, "img"), dry_run=True)  # 01
        cluster.secret("postgres-secret")  # 02
        with pytest.raises(NotFoundError):  # no PersistentVolumeClaim in the fake: still asked
            cluster.claim_volume("postgres-storage-postgres-0")  # 03
        cluster.logs(backend[0])
        cluster.hpa("backend-hpa")
        cluster.diagnose("app=backend")
        cluster.evict(backend[0])
        cluster.delete_pod(backend[1])
        cluster.probe("http://backend:3000/health/live", timeout=5)
        cluster.in_namespace(peer).probe(f"http://backend.{NS}.svc:3000/", timeout=5)
        cluster.in_namespace(peer).diagnose("app=client")  # what a probe that hangs reports
        cluster.restart("backend")
        cluster.rollout_timeline("backend", timeout=5, interval=0.01)
        cluster.wait_rollout("postgres", "StatefulSet", timeout=5)
        notebook = {"name": "01-namespace", "status": "passed", "checks_passed": 2}
        record_summary({"target": "cluster", "notebooks": [notebook]}, cluster)
        image = settings.registry_image
        rendered = render("cluster", settings, image=image)
        reset_cluster(cluster, with_live_image_stamp(cluster, rendered, image), 1, 5)
        addon = render("backup", settings)  # lesson 08: the add-on, a step's Job, cleanup
        cluster.apply(addon)
        cronjob = next(o for o in addon if o["kind"] == "CronJob")
        cluster.apply([backup.job_manifest(cronjob, "restore", backup.COMMANDS["restore"])])
        cluster.delete(addon)
        for api_version, kind in (("batch/v1", "Job"), ("v1", "Pod")):
            cluster.delete_labelled(api_version, kind, backup.JOB_LABEL)
        # lesson 04 on a shared cluster: load through the Service from a load-generator Job (the
        # fake runs its real program against `upstream`), its log followed, the Job deleted
        fake.run_jobs = True
        plan = LoadPlan.build(SERVICE_URL, rate=50, requests=5)
        result = service_load.JobLoad(cluster, plan, progress=False).result(timeout=60)
        fake.run_jobs = False
        assert len(result.df) == 5
        assert (result.df["status"] == 200).all()
        assert cluster.pods(f"{LOAD_LABEL}") == []  # the Job and its pod are gone
    finally:
        target.down()


@pytest.fixture
def exercised(
    fake: FakeApiServer, upstream: tuple[str, int], kubeconfig: str, discovery_cache: None
) -> FakeApiServer:
    settings = replace(
        get_settings(),
        namespace=NS,
        registry_image="registry.example/ironclad-backend:1",
        kube_context=kubeconfig,
        rollout_timeout=10.0,
    )
    exercise_the_lab(fake, settings)
    return fake


def test_the_lab_calls_exactly_lab_calls_in_the_learners_two_namespaces(
    exercised: FakeApiServer,
) -> None:
    recorded = exercised.rules()
    used = {rule for rule, _ in recorded}
    assert sorted(used - rbac.LAB_CALLS) == [], "calls the learner Role does not grant"
    assert sorted(rbac.LAB_CALLS - used) == [], "rules nothing calls any more"
    assert {namespace for _, namespace in recorded} == {NS, f"{NS}-peer"}
    in_peer = {rule for rule, namespace in recorded if namespace == f"{NS}-peer"}
    assert in_peer == rbac.PEER_RULES  # the peer Role: exactly lesson 05's probe


def test_the_provisioned_roles_allow_every_call_the_lab_made(
    exercised: FakeApiServer, gate_of: Any
) -> None:
    """The evaluator applies the Roles provision creates (resourceNames included) and the
    admission policy to every recorded request, with its name and body."""
    plan = Plan(
        "ws", (NS,), Footprint(1, 1, 1, 1, 1), Footprint(1, 1, 1, 1, 1),
        {"cpu": "1", "memory": "1Gi"}, "ab" * 16,
    )  # fmt: skip
    gate = gate_of(all_objects(plan), NS)
    checked = 0
    for call in exercised.calls:
        for request in call.requests():
            assert gate.refusal(request, call.body) is None, (call.method, call.path, request)
            checked += 1
    assert checked > 50
    named = [r for c in exercised.calls for r in c.requests() if r.resource == "rolebindings"]
    assert {r.name for r in named} == {"prometheus"}  # applied by name: resourceNames can apply


def test_named_resources_are_exactly_what_the_render_names() -> None:
    stack = render("cluster", get_settings(), namespace=NS)
    for (group, resource), names in rbac.NAMED.items():
        kind = {"roles": "Role", "rolebindings": "RoleBinding"}[resource]
        rendered = {o["metadata"]["name"] for o in stack if o["kind"] == kind}
        assert (group, set(names)) == (rbac.RBAC_GROUP, rendered)


def client_call_rule(api: str, method: str) -> Rule:
    """The rule a kubernetes.client call needs, from its name (read_namespaced_pod_log ->
    get pods/log)."""
    verb, _, rest = method.partition("_")
    rest = rest.removeprefix("namespaced_")
    sub = next((s for s in SUBRESOURCES if rest.endswith(f"_{s}")), None)
    kind = rest.removesuffix(f"_{sub}") if sub else rest
    resource = kind.replace("_", "") + "s"
    return Rule(CLIENT_VERBS[verb], CLIENT_APIS[api], f"{resource}/{sub}" if sub else resource)


def notebook_client_calls() -> set[Rule]:
    """The rules of the notebooks' direct client calls (env.k8s.core.<method>(...))."""
    found = set()
    for notebook in sorted(get_settings().notebooks_dir.glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                for api, method in re.findall(
                    r"env\.k8s\.(core|apps|autoscaling)\.(\w+)\(", source
                ):
                    found.add(client_call_rule(api, method))
    return found


def test_the_notebooks_make_no_client_call_of_their_own() -> None:
    """Every Kubernetes call of a notebook goes through lab.k8s (explained, and recorded by the
    exercise above): none reaches the client directly."""
    assert notebook_client_calls() == set()


def test_client_call_rules_follow_the_client_names() -> None:
    assert client_call_rule("core", "read_namespaced_pod_log") == Rule("get", "", "pods/log")
    assert client_call_rule("core", "read_namespace") == Rule("get", "", "namespaces")
    assert client_call_rule("apps", "list_namespaced_stateful_set") == Rule(
        "list", "apps", "statefulsets"
    )


def test_escalation_is_what_the_rendered_roles_grant() -> None:
    """RBAC lets a user create a Role only with rules they hold: the learner holds these."""
    roles = [o for o in render("cluster", get_settings(), namespace=NS) if o["kind"] == "Role"]
    assert roles, "the cluster render has no Role (Prometheus' discovery needs one)"
    granted = frozenset().union(*(rbac.parse_role_rules(r["rules"]) for r in roles))
    assert granted == rbac.ESCALATION
    assert granted <= rbac.LEARNER_RULES


def test_the_role_has_no_wildcards_and_nothing_cluster_wide() -> None:
    rules = rbac.role_rules()
    assert rbac.parse_role_rules(rules) == rbac.LEARNER_RULES
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    stack = render("cluster", get_settings(), namespace=NS)
    kinds_applied = {(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in stack}
    assert all(rule.resource != "nodes" for rule in rbac.LEARNER_RULES)
    # the only cluster-scoped resource named is the learner's own Namespace, read by URL
    scoped = {r.resource for r in rbac.LEARNER_RULES} & {"namespaces", "nodes", "clusterroles"}
    assert scoped == {"namespaces"}
    assert {r.verb for r in rbac.LEARNER_RULES if r.resource == "namespaces"} == {"get"}
    assert kinds_applied  # every applied kind has create, patch, delete: see LAB_CALLS test


def test_the_evaluator_follows_rbac_matching_rules() -> None:
    """RBAC's RuleAllows as the API server's rbac/v1 helpers define it."""
    pods = {"apiGroups": [""], "resources": ["pods", "*/log"], "verbs": ["get"]}
    named = {"apiGroups": [rbac.RBAC_GROUP], "resources": ["roles"], "verbs": ["create"],
             "resourceNames": ["prometheus"]}  # fmt: skip
    roles = {"ns": [pods, named]}
    allowed = [
        rbac.Request("get", "", "pods", "ns", "x"),
        rbac.Request("get", "", "deployments/log", "ns", "x"),  # "*/log": any resource's log
        rbac.Request("create", rbac.RBAC_GROUP, "roles", "ns", "prometheus"),
    ]
    denied = [
        rbac.Request("get", "", "pods", "other", "x"),  # a Role is its namespace's only
        rbac.Request("get", "", "pods", None, "x"),  # nothing cluster-scoped
        rbac.Request("list", "", "pods", "ns"),
        rbac.Request("get", "apps", "pods", "ns", "x"),
        rbac.Request("get", "", "pods/exec", "ns", "x"),
        rbac.Request("create", rbac.RBAC_GROUP, "roles", "ns", None),  # POST: no name
        rbac.Request("create", rbac.RBAC_GROUP, "roles", "ns", "mine"),
    ]
    assert [rbac.allows(roles, r) for r in allowed] == [True] * len(allowed)
    assert [rbac.allows(roles, r) for r in denied] == [False] * len(denied)
    star = {"ns": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
    assert all(rbac.allows(star, r) for r in denied if r.namespace == "ns")


def test_the_escalation_check_needs_every_permission_held() -> None:
    held = rbac.role_rules()
    assert rbac.covers(held, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    assert not rbac.covers(held, [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}])
    assert not rbac.covers(held, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}])
    # held only for the name "prometheus": a Role over every RoleBinding is not covered
    any_binding = {"apiGroups": [rbac.RBAC_GROUP], "resources": ["rolebindings"],
                   "verbs": ["create"]}  # fmt: skip
    assert not rbac.covers(held, [any_binding])
    assert rbac.covers(held, [{**any_binding, "resourceNames": ["prometheus"]}])
    assert not rbac.covers(held, [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
