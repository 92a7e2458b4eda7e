"""provision and teardown against a recording fake API (conftest.py): the objects, ownership by the
workshop's id, refusals that change nothing; the dry run through the CLI with the real render
(kubectl kustomize)."""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from lab import cli
from lab.errors import LabError, LabTimeoutError
from lab.model_validation import model_problem
from lab.rbac import LEARNER_RULES, PEER_RULES, parse_role_rules, role_rules
from lab.workshop.capacity import Footprint, probe_footprint
from lab.workshop.guard import BINDING_KIND, POLICY_KIND
from lab.workshop.objects import (
    LABEL_WORKSHOP,
    LABEL_WORKSHOP_ID,
    POD_SECURITY,
    Plan,
    all_objects,
    learner_names,
)
from lab.workshop.provision import (
    Record,
    identity_to_find,
    identity_to_provision,
    new_workshop_name,
    owned,
    parse_duration,
    provision,
    teardown,
)

FOOTPRINT = Footprint(1620, 2240, 8700, 5504, 17, 1, 1)
TO_BACKEND = {
    "to": [{"podSelector": {"matchLabels": {"app": "backend"}}}],
    "ports": [{"protocol": "TCP", "port": 3000}],
}
DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
PLAN = Plan(
    "ws",
    ("learner-01", "learner-02"),
    FOOTPRINT,
    Footprint(700, 1024, 4000, 2816, 6),
    {"cpu": "1000m", "memory": "1024Mi"},
    "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
    (TO_BACKEND, DNS),
)
PER_NAMESPACE = ["Namespace", "ResourceQuota", "LimitRange", "Role", "RoleBinding"]
PEER_NAMESPACE = ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "NetworkPolicy",
                  "Role", "RoleBinding"]  # fmt: skip
POLICY = [POLICY_KIND, BINDING_KIND]
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")


def kinds_by_namespace(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] in POLICY:
            namespace = "(cluster)"
        else:
            namespace = meta["name"] if obj["kind"] == "Namespace" else meta["namespace"]
        found.setdefault(namespace, []).append(obj["kind"])
    return found


def test_each_learner_gets_two_namespaces_with_exactly_these_objects() -> None:
    objects = all_objects(PLAN)
    assert kinds_by_namespace(objects) == {
        "(cluster)": POLICY,
        "learner-01": ["Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "Role",
                       "RoleBinding"],
        "learner-01-peer": PEER_NAMESPACE,
        "learner-02": ["Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "Role",
                       "RoleBinding"],
        "learner-02-peer": PEER_NAMESPACE,
    }  # fmt: skip
    assert [o["kind"] for o in objects[:2]] == POLICY  # guarded before any namespace exists
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels[LABEL_WORKSHOP] == "ws"
        assert labels[LABEL_WORKSHOP_ID] == PLAN.uid
        if obj["kind"] in POLICY:
            continue
        assert labels["ironclad.lab/learner"] in PLAN.learners
        if obj["kind"] == "Namespace":
            assert POD_SECURITY.items() <= labels.items()
        if obj["kind"] == "Role":
            peer = labels["ironclad.lab/part"] == "peer"
            assert obj["rules"] == role_rules(PEER_RULES if peer else LEARNER_RULES)
            assert parse_role_rules(obj["rules"]) == (PEER_RULES if peer else LEARNER_RULES)
        if obj["kind"] == "RoleBinding":
            learner = labels["ironclad.lab/learner"]
            assert obj["subjects"] == [
                {"kind": "ServiceAccount", "name": "learner", "namespace": learner}
            ]


def test_quota_of_the_learner_and_of_the_peer_namespace() -> None:
    quotas = {
        o["metadata"]["namespace"]: o for o in all_objects(PLAN) if o["kind"] == "ResourceQuota"
    }
    assert quotas["learner-01"]["spec"]["hard"] == {
        "requests.cpu": "1620m",
        "requests.memory": "2240Mi",
        "limits.cpu": "8700m",
        "limits.memory": "5504Mi",
        "pods": "17",
        "persistentvolumeclaims": "1",
        "requests.storage": "1Gi",
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    assert quotas["learner-01-peer"]["spec"]["hard"] == {
        **probe_footprint().quota_hard(),
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    assert probe_footprint().pods == 2


def test_the_peer_namespace_denies_everything_but_the_probe_to_its_learners_backend() -> None:
    policies = [
        o
        for o in all_objects(PLAN)
        if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == "learner-02-peer"
    ]
    deny, probe = policies
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert probe["spec"]["policyTypes"] == ["Egress"]  # no ingress rule: nothing comes in
    to_backend, dns = probe["spec"]["egress"]
    assert to_backend["to"] == [
        {
            "podSelector": {"matchLabels": {"app": "backend"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "learner-02"}},
        }
    ]
    assert to_backend["ports"] == [{"protocol": "TCP", "port": 3000}]
    assert dns == DNS


def test_every_object_passes_the_client_models_and_the_check_can_fail() -> None:
    objects = all_objects(PLAN)
    assert [model_problem(o) for o in objects] == [None] * len(objects)
    quota = next(o for o in objects if o["kind"] == "ResourceQuota")
    broken = {**quota, "spec": {"hard": ["requests.cpu", "1"]}}  # hard must be a map
    assert "V1ResourceQuota rejected" in (model_problem(broken) or "")
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    typo = {**account, "automountServiceAcountToken": False}
    assert "dropped" in (model_problem(typo) or "")


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0"])
def test_every_object_validates_strictly_against_the_api_schema(version: str) -> None:
    """What an API server of that version accepts (1.30: the oldest the policy needs)."""
    import kubernetes_validate

    objects = all_objects(PLAN)
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
    quota = next(o for o in objects if o["kind"] == "ResourceQuota")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**quota, "spec": {"hrad": {}}}, version, strict=True)


def test_no_role_has_a_wildcard_or_a_cluster_scoped_kind() -> None:
    rbac = [o for o in all_objects(PLAN) if o["kind"] in ("Role", "RoleBinding", "ClusterRole",
                                                          "ClusterRoleBinding")]  # fmt: skip
    assert {o["kind"] for o in rbac} == {"Role", "RoleBinding"}
    for role in (o for o in rbac if o["kind"] == "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_provision_applies_everything_then_writes_0600_kubeconfigs(
    fake_api: Any, tmp_path: Path
) -> None:
    done = provision(PLAN, fake_api, tmp_path, 8 * 3600)
    applies = [c for c in fake_api.calls if c[0] == "apply"]
    assert applies == [("apply", len(all_objects(PLAN)))]
    assert list(fake_api.objects.values()) == all_objects(PLAN)
    assert [c for c in fake_api.calls if c[0] == "request_token"] == [
        ("request_token", "learner-01", "learner", 28800),
        ("request_token", "learner-02", "learner", 28800),
    ]
    assert Record.read(tmp_path) == Record("ws", PLAN.uid)
    assert [p.learner for p in done] == ["learner-01", "learner-02"]
    for p in done:
        assert stat.S_IMODE(p.kubeconfig.stat().st_mode) == 0o600
        config = yaml.safe_load(p.kubeconfig.read_text())
        assert config["current-context"] == p.learner
        assert config["contexts"][0]["context"]["namespace"] == p.learner
        assert config["users"][0]["user"]["token"] == f"token-of-{p.learner}"
        assert config["clusters"][0]["cluster"] == {  # what reaches the API server is kept
            "server": "https://workshop.example:6443",
            "certificate-authority-data": "Q0EtREFUQQ==",
            "tls-server-name": "api.workshop.internal",
            "proxy-url": "socks5://bastion.example:1080",
        }


def test_provision_is_idempotent_and_a_half_way_failure_is_rerun(
    fake_api: Any, tmp_path: Path
) -> None:
    fake_api.fail_token_for = "learner-02"
    with pytest.raises(LabError, match="went away"):
        provision(PLAN, fake_api, tmp_path, 3600)
    assert (tmp_path / "learner-01.kubeconfig").exists()
    assert not (tmp_path / "learner-02.kubeconfig").exists()
    (tmp_path / "learner-01.kubeconfig").chmod(0o644)
    before = dict(fake_api.objects)
    record, resumed = identity_to_provision(None, tmp_path)  # the same --out: the same workshop
    assert (record, resumed) == (Record("ws", PLAN.uid), True)
    done = provision(PLAN, fake_api, tmp_path, 3600)
    assert fake_api.objects == before  # the same objects, applied again: nothing new
    assert len(done) == 2
    assert all(stat.S_IMODE(p.kubeconfig.stat().st_mode) == 0o600 for p in done)


FOREIGN = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "learner-02"}}
SECRET = {"apiVersion": "v1", "kind": "Secret",
          "metadata": {"name": "theirs", "namespace": "learner-02"}}  # fmt: skip


def test_a_namespace_that_is_not_ours_stops_provision_before_anything_changes(
    fake_api: Any, tmp_path: Path
) -> None:
    fake_api.apply([FOREIGN, SECRET])
    before, calls = dict(fake_api.objects), len(fake_api.calls)
    with pytest.raises(LabError, match="Nothing was changed: namespace learner-02 exists and is "
                       "not a workshop's") as refused:  # fmt: skip
        provision(PLAN, fake_api, tmp_path, 3600)
    assert "--prefix" in refused.value.next_step
    assert fake_api.objects == before
    assert {c[0] for c in fake_api.calls[calls:]} <= {"namespace", "namespaces", "cluster_object"}
    assert not list(tmp_path.iterdir())  # no record, no kubeconfig


def test_a_second_workshop_with_the_same_name_is_refused(fake_api: Any, tmp_path: Path) -> None:
    provision(PLAN, fake_api, tmp_path / "morning", 3600)
    before = dict(fake_api.objects)
    # the afternoon reuses the name, not the morning's --out: a new id, other learners
    record, resumed = identity_to_provision("ws", tmp_path / "afternoon")
    assert not resumed
    assert record.uid != PLAN.uid
    afternoon = Plan("ws", ("pm-01",), FOOTPRINT, FOOTPRINT, PLAN.max_container, record.uid,
                     PLAN.peer_egress)  # fmt: skip
    with pytest.raises(LabError, match=f"the name ws is taken .*id {PLAN.uid}"):
        provision(afternoon, fake_api, tmp_path / "afternoon", 3600)
    assert fake_api.objects == before
    with pytest.raises(LabError, match="records workshop ws, not other"):
        identity_to_provision("other", tmp_path / "morning")


def test_default_workshop_names_differ_between_runs_and_are_valid_labels() -> None:
    names = {new_workshop_name() for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert re.fullmatch(r"ironclad-\d{8}-\d{4}-[0-9a-f]{8}", name)
        assert identity_to_provision(name, Path("/nonexistent"))[0].workshop == name


def two_workshops(fake_api: Any) -> Plan:
    """PLAN applied, plus workshop "other" (id 1...) and a namespace nobody provisioned."""
    fake_api.apply(all_objects(PLAN))
    other = Plan("other", ("learner-01x",), FOOTPRINT, FOOTPRINT, PLAN.max_container, "1" * 32,
                 PLAN.peer_egress)  # fmt: skip
    fake_api.apply(all_objects(other))
    fake_api.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}])
    return other


def test_teardown_deletes_only_the_workshops_objects_and_waits(fake_api: Any) -> None:
    two_workshops(fake_api)
    target = owned(fake_api, "ws", PLAN.uid)
    assert target.namespaces == ("learner-01", "learner-01-peer", "learner-02", "learner-02-peer")
    assert [(o.kind, o.name) for o in target.cluster_objects] == [
        (POLICY_KIND, "ironclad-lab-ws"),
        (BINDING_KIND, "ironclad-lab-ws"),
    ]
    teardown(fake_api, target, timeout=10)
    deleted = [c[1:] for c in fake_api.calls if c[0].startswith("delete")]
    assert deleted == [
        *((n,) for n in target.namespaces),
        (POLICY_KIND, "ironclad-lab-ws"),  # after the namespaces are gone
        (BINDING_KIND, "ironclad-lab-ws"),
    ]
    left = {k[2] for k in fake_api.objects if k[0] in ("Namespace", POLICY_KIND)}
    assert left == {"learner-01x", "learner-01x-peer", "default", "ironclad-lab-other"}
    with pytest.raises(LabError, match="There is no workshop ws on this cluster"):
        owned(fake_api, "ws", None)  # a second teardown: a clear error, nothing deleted


def test_teardown_of_a_workshop_that_is_not_there_deletes_nothing(fake_api: Any) -> None:
    two_workshops(fake_api)
    before = dict(fake_api.objects)
    with pytest.raises(LabError, match="There is no workshop ws with id 9+ on this cluster "
                       rf"\(objects of that name carry id {PLAN.uid}\)"):  # fmt: skip
        owned(fake_api, "ws", "9" * 32)
    with pytest.raises(LabError, match="There is no workshop nope on this cluster"):
        owned(fake_api, "nope", None)
    assert fake_api.objects == before
    assert not [c for c in fake_api.calls if c[0].startswith("delete")]


def test_teardown_finds_the_workshop_from_its_record_or_its_only_id(
    fake_api: Any, tmp_path: Path
) -> None:
    with pytest.raises(LabError, match="Which workshop"):
        identity_to_find(None, None, tmp_path)
    Record("ws", PLAN.uid).write(tmp_path)
    assert identity_to_find(None, None, tmp_path) == ("ws", PLAN.uid)
    assert identity_to_find("other", None, tmp_path) == ("other", None)
    two_workshops(fake_api)
    assert owned(fake_api, "other", None).uid == "1" * 32
    (tmp_path / "workshop.json").write_text("[1, 2]")
    with pytest.raises(LabError, match="is not a workshop record"):
        identity_to_find(None, None, tmp_path)


def test_teardown_times_out_naming_what_is_left(fake_api: Any) -> None:
    fake_api.deletion_polls = 10**6
    fake_api.apply(all_objects(PLAN))
    with pytest.raises(LabTimeoutError, match="learner-01-peer"):
        teardown(fake_api, owned(fake_api, "ws", PLAN.uid), timeout=1.5)


def test_bad_input_is_refused_before_anything_is_applied() -> None:
    with pytest.raises(LabError, match="not a valid namespace name"):
        learner_names(2, "Learner_")
    with pytest.raises(LabError, match="not a valid namespace name"):
        learner_names(2, "x" * 60)  # no room left for the -peer suffix
    with pytest.raises(LabError, match="at least one"):
        learner_names(0, "learner-")
    assert learner_names(3, "l-") == ("l-01", "l-02", "l-03")
    assert learner_names(120, "l-")[-1] == "l-120"
    assert parse_duration("8h") == 28800
    assert parse_duration("1d12h") == 129600
    for bad in ("8", "8x", "h8", "5m"):
        with pytest.raises(LabError, match="--token-expiry"):
            parse_duration(bad)


@needs_kubectl
def test_dry_run_of_three_learners_prints_the_objects_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")  # any API call would fail
    assert cli.main(["workshop", "provision", "--learners", "3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# per learner at most: requests ")
    objects = [o for o in yaml.safe_load_all(out) if o]
    learners = [
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "Namespace" and o["metadata"]["labels"]["ironclad.lab/part"] == "learner"
    ]
    assert learners == ["learner-01", "learner-02", "learner-03"]
    by_namespace = kinds_by_namespace(objects)
    for learner in learners:
        assert sorted(by_namespace[learner]) == sorted([*PER_NAMESPACE, "ServiceAccount"])
        assert sorted(by_namespace[f"{learner}-peer"]) == sorted(PEER_NAMESPACE)
    roles = [o for o in objects if o["kind"] == "Role"]
    assert [parse_role_rules(r["rules"]) for r in roles] == [LEARNER_RULES, PEER_RULES] * 3
    assert "# workshop ironclad-" in out  # the generated name, said


def test_teardown_asks_unless_yes_and_refuses_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from lab.commands.workshop import confirm

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal
    with pytest.raises(LabError, match="no terminal to ask on: nothing was deleted") as info:
        confirm("Delete?")
    assert "--yes" in info.value.next_step

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    with pytest.raises(LabError, match="cancelled"):
        confirm("Delete?")
    monkeypatch.setattr("sys.stdin", Terminal("yes\n"))
    confirm("Delete?")


@needs_kubectl
def test_what_provision_makes_satisfies_what_the_cluster_target_requires(
    fake_api: Any, tmp_path: Path
) -> None:
    """The rendered stack fits the LimitRange and the quota; the namespace carries the Pod
    Security level the cluster target checks (lab.targets.cluster.check_namespace)."""
    from lab.k8s import POD_SECURITY_ENFORCE, probe_pod
    from lab.pod_templates import pods
    from lab.settings import get_settings
    from lab.workshop.capacity import pod_footprint, quantity
    from lab.workshop.provision import learner_stack, make_plan

    settings = get_settings()
    plan = make_plan(settings, 1, "learner-", "ws", "ef" * 16)
    objects = all_objects(plan)
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"][POD_SECURITY_ENFORCE] == "restricted"
    (limits,) = next(o for o in objects if o["kind"] == "LimitRange")["spec"]["limits"]
    for resource in ("cpu", "memory"):  # defaultRequest <= default <= max, as the API requires
        request, default, most = (
            quantity(limits[key][resource]) for key in ("defaultRequest", "default", "max")
        )
        assert request <= default <= most
    probe = ApiClient().sanitize_for_serialization(probe_pod("p", "http://x", {}, "i"))  # type: ignore[no-untyped-call]
    specs = [p.spec for p in pods(learner_stack(settings))] + [probe["spec"]]
    for spec in specs:
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            declared = container.get("resources", {})
            assert {"cpu", "memory"} <= set(declared.get("limits", {})), container["name"]
            assert {"cpu", "memory"} <= set(declared.get("requests", {})), container["name"]
            for resource in ("cpu", "memory"):
                assert quantity(declared["limits"][resource]) <= quantity(limits["max"][resource])
    quota = next(o for o in objects if o["kind"] == "ResourceQuota")["spec"]["hard"]
    biggest = max(pod_footprint(spec).limits_cpu_m for spec in specs)
    assert biggest <= quantity(quota["limits.cpu"]) * 1000
