"""lab.wrong_order's cluster half: the too-early Deployment is the target's backend Deployment,
renamed so that nothing of the stack selects it, and `deploy_too_early` applies it, waits for the
failure, reports it and deletes it again, against the fake API server with a learner's
kubeconfig (a real API server, scheduler and kubelet are the kind workflow's: notebook 03's
needs-cluster cells). The process half runs a real backend: tests/integration/lab/
test_wrong_order_local.py."""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from lab import manifests, rbac
from lab.errors import LabTimeoutError
from lab.identity import Identity
from lab.k8s import PodState
from lab.lint import lint
from lab.model_validation import model_problem
from lab.session import Lab
from lab.settings import DEFAULT_NAMESPACE, get_settings
from lab.targets.base import Endpoints
from lab.wrong_order import EARLY, EarlyPod, deploy_too_early, too_early_deployment

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

SETTINGS = get_settings()
SECRET = "postgres-secret-v2"


@functools.cache
def rendered() -> tuple[manifests.Obj, ...]:
    return tuple(manifests.render("kind", SETTINGS))


def container(deployment: manifests.Obj) -> dict[str, Any]:
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(found)


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


@pytest.mark.parametrize("missing", [None, SECRET])
def test_the_stray_is_the_backend_renamed_and_selected_by_nothing(missing: str | None) -> None:
    objects = list(rendered())
    before = copy.deepcopy(objects)
    stray = too_early_deployment(objects, missing, 5)
    assert objects == before  # the render is not changed
    backend = manifests.find(objects, "Deployment", "backend")
    assert stray["metadata"]["name"] == EARLY
    assert model_problem(stray) is None
    labels = stray["spec"]["template"]["metadata"]["labels"]
    assert selects(stray["spec"]["selector"]["matchLabels"], labels)
    for obj in objects:  # no Service, PDB, HPA (nor the real backend) takes its pods
        spec = obj.get("spec") or {}
        selector = spec.get("selector")
        if obj["kind"] == "Service":
            assert not selects(selector, labels), obj["metadata"]["name"]
        elif isinstance(selector, dict):
            assert not selects(selector.get("matchLabels"), labels), obj["metadata"]["name"]
        if obj["kind"] == "HorizontalPodAutoscaler":
            assert spec["scaleTargetRef"]["name"] != EARLY
    mine, theirs = container(stray), container(backend)
    assert mine["image"] == theirs["image"]
    assert mine["readinessProbe"] == theirs["readinessProbe"]
    assert {"name": "DB_STARTUP_TIMEOUT_S", "value": "5"} in mine["env"]
    refs = {
        v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
        for v in mine["env"]
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    password = missing or "postgres-secret"
    assert refs == {"POSTGRES_PASSWORD": password, "CHAOS_TOKEN": "chaos-secret"}


def test_the_stray_passes_the_stacks_lint_but_for_its_missing_secret() -> None:
    """Hardened like the backend (Pod Security restricted, resources, probes): a shared cluster
    admits it. Pointed at a Secret that does not exist, the lab's lint says so, alone."""
    objects = list(rendered())
    assert lint([*objects, too_early_deployment(objects, None, 5)], DEFAULT_NAMESPACE) == []
    (finding,) = lint([*objects, too_early_deployment(objects, SECRET, 5)], DEFAULT_NAMESPACE)
    assert (finding.name, finding.message) == (
        EARLY,
        f"Secret '{SECRET}' does not exist in namespace '{DEFAULT_NAMESPACE}'",
    )


NS = "learner-07"


def cluster_lab(fake: FakeApiServer, kubeconfig: str) -> Lab:
    """The notebook's handle on a cluster-target lab in NS, its identity the learner's."""
    fake.namespaces.add(NS)
    settings = replace(SETTINGS, namespace=NS, kube_context=kubeconfig)
    identity = Identity(
        kubeconfig,
        NS,
        os.environ["KUBECONFIG"],
        image="registry.example/ironclad-backend:1",
        shared=True,
    )
    return Lab(Endpoints("cluster", ""), NS, 0, "test", settings, identity=identity)


def test_deploy_too_early_reports_the_pods_failure_and_removes_it(
    fake: FakeApiServer, kubeconfig: str, discovery_cache: None
) -> None:
    """The Secret case: the pod waits in CreateContainerConfigError (the fake's pods, as a
    kubelet would leave them), its event is reported, and the Deployment and its pod are gone
    after the call; every request stayed in the learner's namespace, within the learner Role."""
    from fake_kube_api import event_json

    fake.pod_waiting = "CreateContainerConfigError"
    fake.events.append(
        event_json("Failed", "Pod", f"{EARLY}-0", f'Error: secret "{SECRET}" not found')
    )
    env = cluster_lab(fake, kubeconfig)
    seen = deploy_too_early(env=env, missing_ref=SECRET, timeout=10)
    assert seen.pod.name == f"{EARLY}-0"
    assert seen.pod.detail == "CreateContainerConfigError"
    assert [e.message for e in seen.events] == [f'Error: secret "{SECRET}" not found']
    assert not seen.pod.ready
    assert EARLY not in fake.deployments
    assert not [p for p in fake.pods if p.startswith(EARLY)]
    applied = [c for c in fake.calls if c.method == "PATCH" and EARLY in c.path]
    assert len(applied) == 1
    assert {r.namespace for c in fake.calls for r in c.requests()} == {NS}
    called = {rule for c in fake.calls if (rules := c.authorization()) for rule in rules[0]}
    assert called <= rbac.LAB_CALLS  # the learner Role allows the cell


@pytest.mark.parametrize("waiting", [None, "CreateContainerConfigError"])
def test_deploy_too_early_deletes_the_deployment_when_the_wait_fails(
    fake: FakeApiServer, kubeconfig: str, discovery_cache: None, waiting: str | None
) -> None:
    """A pod that never shows the failure (ready; or waiting without the kubelet's event about
    it) times out the wait, and the Deployment is removed anyway."""
    fake.pod_waiting = waiting
    env = cluster_lab(fake, kubeconfig)
    with pytest.raises(LabTimeoutError, match=f"the pod of {EARLY} to fail"):
        deploy_too_early(env=env, missing_ref=SECRET, timeout=2)
    assert EARLY not in fake.deployments
    assert not [p for p in fake.pods if p.startswith(EARLY)]


def test_the_log_frame_shows_each_line_once_with_its_repeats_counted() -> None:
    """A pod's log as the kubelet returns it (JSON lines, a traceback inside one): one row per
    distinct line in a row, its first line only, repeats counted."""
    refused = '{"level":"WARNING","logger":"psycopg.pool","msg":"error connecting: refused"}'
    text = "\n".join(
        [
            '{"level":"INFO","logger":"uvicorn.error","msg":"Waiting for application startup."}',
            refused,
            refused,
            refused,
            '{"level":"ERROR","logger":"uvicorn.error","msg":"Traceback (most recent call)\\n  x"}',
            "not json: skipped",
        ]
    )
    pod = PodState("backend-too-early-0", "Running", False, 1, "", None, None, False, None)
    frame = EarlyPod(pod, (), text).log_frame()
    assert frame.to_dict("records") == [
        {"level": "INFO", "logger": "uvicorn.error", "msg": "Waiting for application startup.",
         "times": 1},
        {"level": "WARNING", "logger": "psycopg.pool", "msg": "error connecting: refused",
         "times": 3},
        {"level": "ERROR", "logger": "uvicorn.error", "msg": "Traceback (most recent call)",
         "times": 1},
    ]  # fmt: skip
