"""provision and teardown against a recording fake API (conftest.py); the dry run through the CLI
with the real render (kubectl kustomize)."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import cli
from lab.errors import LabError, LabTimeoutError
from lab.models import model_problem
from lab.rbac import LEARNER_RULES, parse_role_rules, role_rules
from lab.workshop.capacity import Footprint, probe_footprint
from lab.workshop.objects import (
    LABEL_WORKSHOP,
    POD_SECURITY,
    Plan,
    all_objects,
    learner_names,
)
from lab.workshop.provision import parse_duration, provision, teardown

FOOTPRINT = Footprint(1620, 2240, 8700, 5504, 17, 1, 1)
PLAN = Plan(
    "ws",
    ("learner-01", "learner-02"),
    FOOTPRINT,
    Footprint(700, 1024, 4000, 2816, 6),
    {"cpu": "1000m", "memory": "1024Mi"},
)
PER_NAMESPACE = ["Namespace", "ResourceQuota", "LimitRange", "Role", "RoleBinding"]
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")


def kinds_by_namespace(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for obj in objects:
        meta = obj["metadata"]
        namespace = meta["name"] if obj["kind"] == "Namespace" else meta["namespace"]
        found.setdefault(namespace, []).append(obj["kind"])
    return found


def test_each_learner_gets_two_namespaces_with_exactly_these_objects() -> None:
    objects = all_objects(PLAN)
    assert kinds_by_namespace(objects) == {
        "learner-01": ["Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "Role",
                       "RoleBinding"],
        "learner-01-peer": PER_NAMESPACE,
        "learner-02": ["Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "Role",
                       "RoleBinding"],
        "learner-02-peer": PER_NAMESPACE,
    }  # fmt: skip
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels[LABEL_WORKSHOP] == "ws"
        assert labels["ironclad.lab/learner"] in PLAN.learners
        if obj["kind"] == "Namespace":
            assert POD_SECURITY.items() <= labels.items()
        if obj["kind"] == "Role":
            assert obj["rules"] == role_rules()
            assert parse_role_rules(obj["rules"]) == LEARNER_RULES
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
    }
    assert quotas["learner-01-peer"]["spec"]["hard"] == probe_footprint().quota_hard()
    assert probe_footprint().pods == 2


def test_every_object_passes_the_client_models_and_the_check_can_fail() -> None:
    objects = all_objects(PLAN)
    assert [model_problem(o) for o in objects] == [None] * len(objects)
    broken = {**objects[1], "spec": {"hard": ["requests.cpu", "1"]}}  # hard must be a map
    assert "V1ResourceQuota rejected" in (model_problem(broken) or "")
    typo = {**objects[3], "automountServiceAcountToken": False}
    assert "dropped" in (model_problem(typo) or "")


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
    assert fake_api.calls[0] == ("apply", len(all_objects(PLAN)))
    assert list(fake_api.objects.values()) == all_objects(PLAN)
    assert [c for c in fake_api.calls if c[0] == "request_token"] == [
        ("request_token", "learner-01", "learner", 28800),
        ("request_token", "learner-02", "learner", 28800),
    ]
    assert [p.learner for p in done] == ["learner-01", "learner-02"]
    for p in done:
        assert stat.S_IMODE(p.kubeconfig.stat().st_mode) == 0o600
        config = yaml.safe_load(p.kubeconfig.read_text())
        assert config["current-context"] == p.learner
        assert config["contexts"][0]["context"]["namespace"] == p.learner
        assert config["users"][0]["user"]["token"] == f"token-of-{p.learner}"
        assert config["clusters"][0]["cluster"] == {
            "server": "https://workshop.example:6443",
            "certificate-authority-data": "Q0EtREFUQQ==",
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
    done = provision(PLAN, fake_api, tmp_path, 3600)
    assert fake_api.objects == before  # the same objects, applied again: nothing new
    assert len(done) == 2
    assert all(stat.S_IMODE(p.kubeconfig.stat().st_mode) == 0o600 for p in done)


def test_teardown_deletes_only_the_workshops_namespaces_and_waits(fake_api: Any) -> None:
    fake_api.apply(all_objects(PLAN))
    other = Plan("other", ("learner-01x",), FOOTPRINT, FOOTPRINT, PLAN.max_container)
    fake_api.apply(all_objects(other))
    fake_api.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}])
    deleted = teardown(fake_api, "ws", timeout=10)
    assert deleted == ["learner-01", "learner-01-peer", "learner-02", "learner-02-peer"]
    assert {c[1] for c in fake_api.calls if c[0] == "delete_namespace"} == set(deleted)
    assert {c[1] for c in fake_api.calls if c[0] == "namespaces"} == {f"{LABEL_WORKSHOP}=ws"}
    left = {k[2] for k in fake_api.objects if k[0] == "Namespace"}
    assert left == {"learner-01x", "learner-01x-peer", "default"}
    calls = len(fake_api.calls)
    assert teardown(fake_api, "ws", timeout=10) == []  # idempotent: nothing left to delete
    assert fake_api.calls[calls:] == [("namespaces", f"{LABEL_WORKSHOP}=ws")]


def test_teardown_times_out_naming_what_is_left(fake_api: Any) -> None:
    fake_api.deletion_polls = 10**6
    fake_api.apply(all_objects(PLAN))
    with pytest.raises(LabTimeoutError, match="learner-01-peer"):
        teardown(fake_api, "ws", timeout=1.5)


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
        assert sorted(by_namespace[f"{learner}-peer"]) == sorted(PER_NAMESPACE)
    roles = [o for o in objects if o["kind"] == "Role"]
    assert all(parse_role_rules(r["rules"]) == LEARNER_RULES for r in roles)
