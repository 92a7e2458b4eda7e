"""Every failure of a `lab.k8s` call is explained (issue 24 item 3): one test per class of
answer — 403, 404, 409, 422, another error status, and no answer at all — each made by the real
client (`NamespaceClient.connect`, the one factory) against the recording fake API server or a
port nobody listens on. What is checked is the message a learner reads: the context, the call,
what the server said and what to do next; the error stays the `ApiException` it was.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kubernetes.client.exceptions import ApiException

from lab.identity import resolve
from lab.k8s import (
    ApiError,
    ApiUnreachableError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NamespaceClient,
    NotFoundError,
    explain,
    probe_pod,
)
from lab.k8s.admin import ADMIN_FIX, ClusterAdmin
from lab.rbac import Rule

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

NS = "ironclad-demo"
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}


@pytest.fixture
def learner(fake: FakeApiServer, kubeconfig: str, discovery_cache: None) -> NamespaceClient:
    """The learner's namespace through the one client factory (context `learner`)."""
    return NamespaceClient.connect(resolve(NS, kubeconfig, shared=True))


def test_403_names_who_may_not_do_what_and_the_fix(
    fake: FakeApiServer, learner: NamespaceClient
) -> None:
    fake.refuse[Rule("list", "", "pods")] = (
        403,
        'pods is forbidden: User "system:serviceaccount:ironclad-demo:learner" cannot list '
        f'resource "pods" in API group "" in the namespace "{NS}"',
    )
    with pytest.raises(ForbiddenError) as info:
        learner.pods()
    text = str(info.value)
    assert "In context learner, the API server refused to list pods" in text
    assert f"may not list pods in namespace {NS} (403 Forbidden)" in text
    assert "lab.rbac" in info.value.next_step
    assert info.value.status == 403
    assert info.value.action == "list pods"


def test_404_says_what_is_missing_where_and_how_to_get_it(learner: NamespaceClient) -> None:
    with pytest.raises(NotFoundError) as info:
        learner.secret("postgres-secret")
    text = str(info.value)
    assert f"In context learner, namespace {NS}, cannot read Secret/postgres-secret" in text
    assert "404 Not Found" in text
    assert "reset --to N" in info.value.next_step
    assert isinstance(info.value, ApiException)
    assert info.value.status == 404


# (rule refused, status, the server's message, the call, error class, words of the message,
#  words of the fix): a conflict of an apply that does not force, an invalid object, a 500
ANSWERS = [
    (
        Rule("patch", "", "configmaps"),
        409,
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.x',
        lambda k8s: k8s.apply([CONFIGMAP], force_conflicts=False),
        ConflictError,
        ["cannot apply ConfigMap/c", 'conflict with "kubectl-edit"', "(409 Conflict)"],
        "--show-managed-fields",
    ),
    (
        Rule("create", "", "pods"),
        422,
        'Pod "p" is invalid: spec.containers[0].image: Required value',
        lambda k8s: k8s.create_pod(probe_pod("p", "tcp://x:1", {}, "img"), dry_run=True),
        InvalidError,
        ["refused to create pod p (dry run): the object is invalid", "image: Required value"],
        "kubectl explain",
    ),
    (
        Rule("list", "", "events"),
        500,
        "etcdserver: request timed out",
        lambda k8s: k8s.events(),
        ApiError,
        ["failed to list events (500", "etcdserver: request timed out"],
        "/readyz",
    ),
]


@pytest.mark.parametrize(
    ("rule", "status", "said", "call", "error", "words", "fix"),
    ANSWERS,
    ids=["409-conflict", "422-invalid", "500-other"],
)
def test_an_error_answer_is_explained_by_its_class(
    fake: FakeApiServer,
    learner: NamespaceClient,
    rule: Rule,
    status: int,
    said: str,
    call: Callable[[NamespaceClient], object],
    error: type[ApiError],
    words: list[str],
    fix: str,
) -> None:
    fake.refuse[rule] = (status, said)
    with pytest.raises(error) as info:
        call(learner)
    assert type(info.value) is error
    assert info.value.status == status
    for word in words:
        assert word in str(info.value)
    assert fix in info.value.next_step


def test_422_lists_each_field_cause_of_the_status_details() -> None:
    body = {
        "kind": "Status",
        "message": 'Deployment.apps "backend" is invalid: [...]',
        "details": {
            "causes": [
                {"field": "spec.replicas", "message": "must be >= 0"},
                {"field": "spec.template.spec.containers", "message": "Required value"},
            ]
        },
    }
    answer = ApiException(status=422, reason="Unprocessable Entity")
    answer.body = json.dumps(body)
    error = explain(answer, "apply Deployment/backend", NS, "kind-ironclad")
    assert isinstance(error, InvalidError)
    assert "spec.replicas: must be >= 0; spec.template.spec.containers: Required value" in str(
        error
    )


def test_a_refused_port_forward_is_explained_like_any_refusal(
    fake: FakeApiServer, upstream: tuple[str, int], learner: NamespaceClient
) -> None:
    """The API server refuses the websocket upgrade itself (the client wraps that as status 0
    with websocket-client's text): still the 403 it was, naming the call and the rule."""
    fake.pods = {"a": fake.pod_json("a")}
    fake.refuse[Rule("get", "", "pods/portforward")] = (
        403,
        'pods "a" is forbidden: User "u" cannot get resource "pods/portforward" in API group "" '
        f'in the namespace "{NS}"',
    )
    with pytest.raises(ForbiddenError) as info:
        learner.connect_port("a", 3000)
    assert "refused to forward port 3000 of pod a: u may not get pods/portforward" in str(
        info.value
    )
    assert info.value.status == 403


def test_no_answer_at_all_names_the_server_and_what_to_check(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on once it is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "gone",
    }
    (tmp_path / "kubeconfig").write_text(json.dumps(config))
    identity = resolve(NS, "gone", shared=True, kubeconfig=str(tmp_path / "kubeconfig"))
    gone = NamespaceClient.connect(identity)
    with pytest.raises(ApiUnreachableError, match=r"does not answer \(connection refused\)"):
        gone.connect_port("backend-0", 3000)  # a websocket, opened outside the REST layer
    with pytest.raises(ApiUnreachableError) as info:
        gone.hpa("backend-hpa")
    assert f"The API server of context gone (http://127.0.0.1:{port}) does not answer" in (
        str(info.value)
    )
    assert "connection refused" in str(info.value)
    assert "cluster-info" in info.value.next_step


def test_the_instructors_403_says_the_workshop_needs_cluster_admin(
    fake: FakeApiServer, kubeconfig: str, discovery_cache: None
) -> None:
    fake.refuse[Rule("list", "", "namespaces")] = (
        403,
        'namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" '
        "at the cluster scope",
    )
    admin = ClusterAdmin.connect(resolve("default", kubeconfig))
    with pytest.raises(ForbiddenError) as info:
        admin.namespaces("ironclad.dev/workshop=ws")
    assert "u may not list namespaces cluster-wide (403 Forbidden)" in str(info.value)
    assert info.value.next_step == ADMIN_FIX


def test_an_error_explained_by_an_inner_call_keeps_its_words(learner: NamespaceClient) -> None:
    """A method built on other calls (probe -> create_pod) raises the inner call's
    explanation, not one re-worded by the outer."""
    inner = NotFoundError("inner words", "inner fix", ApiException(status=404), "read pod p")

    def explained_inside() -> None:
        raise inner

    with pytest.raises(NotFoundError, match="inner words"):
        learner._call("outer", explained_inside)
