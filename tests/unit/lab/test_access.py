"""lab.k8s access reviews ask the API server the right review; a kind test asks a real one."""

from __future__ import annotations

import json
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import RESTResponse

from lab.k8s import NamespaceClient, Question, service_account


class RecordingClient(client.ApiClient):
    """Answers every access review like an API server would (`status.allowed`), over no network,
    and records what was posted (path, body)."""

    def __init__(self, allowed: bool) -> None:
        super().__init__()
        self.allowed = allowed
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> RESTResponse:
        body = args[1]  # after the headers
        self.asked.append((url.removeprefix(self.configuration.host), body))
        answer = {**body, "status": {"allowed": self.allowed}}
        raw = urllib3.HTTPResponse(
            body=json.dumps(answer).encode(),
            status=201,
            headers={"Content-Type": "application/json"},
            preload_content=False,
        )
        return RESTResponse(raw)


def test_without_a_user_it_asks_about_yourself() -> None:
    api = RecordingClient(allowed=True)
    assert NamespaceClient("ironclad-demo", api).can_i(Question("list", "pods", "ironclad-demo"))
    [(path, body)] = api.asked
    assert path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert body["spec"]["resourceAttributes"] == {
        "verb": "list",
        "resource": "pods",
        "namespace": "ironclad-demo",
        "group": "",
    }


def test_with_a_user_it_asks_about_that_service_account() -> None:
    api = RecordingClient(allowed=False)
    prometheus = service_account("ironclad-demo", "prometheus")
    cluster = NamespaceClient("ironclad-demo", api)
    assert cluster.can_i(Question("list", "nodes"), user=prometheus) is False
    [(path, body)] = api.asked
    assert path == "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    assert body["spec"]["user"] == "system:serviceaccount:ironclad-demo:prometheus"
    assert "namespace" not in body["spec"]["resourceAttributes"]  # cluster-wide


def test_verdicts_frame_is_one_row_per_question() -> None:
    questions = [Question("watch", "pods", "ironclad-demo"), Question("list", "pods", "default")]
    cluster = NamespaceClient("ironclad-demo", RecordingClient(allowed=True))
    frame = cluster.verdicts_frame(questions, user="someone")
    assert frame.to_dict("records") == [
        {"may": "watch pods in ironclad-demo", "allowed": True},
        {"may": "list pods in default", "allowed": True},
    ]
