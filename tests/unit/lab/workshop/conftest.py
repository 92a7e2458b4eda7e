"""A recording fake of `lab.workshop.api.InstructorApi`: an in-memory API server that keeps
what was applied (by kind, namespace and name, as server-side apply does), deletes namespaces
with everything in them after `deletion_polls` reads (as namespace finalization does), and logs
every call. It stands in for the cluster; the real `KubeInstructorApi` is exercised only on a
kind cluster (tests/integration/lab/test_workshop_kind.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lab.errors import LabError
from lab.manifests import Obj
from lab.workshop.api import ClusterObject, Endpoint, Namespace, ObjectState, Token


def selects(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors ("a=b,c=d"), the only kind the workshop uses."""
    return all(labels.get(k) == v for k, _, v in (p.partition("=") for p in selector.split(",")))


@dataclass
class RecordingFakeInstructorApi:
    """See the module docstring. `fail_token_for` makes one TokenRequest fail once."""

    deletion_polls: int = 2
    fail_token_for: str | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    terminating: dict[str, int] = field(default_factory=dict)  # namespace -> reads left
    states: dict[tuple[str, str, str], ObjectState] = field(default_factory=dict)
    config_map_data: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def apply(self, objects: Sequence[Obj]) -> None:
        self.calls.append(("apply", len(objects)))
        for obj in objects:
            meta = obj["metadata"]
            self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj

    def namespace(self, name: str) -> Namespace | None:
        self.calls.append(("namespace", name))
        found = self.objects.get(("Namespace", "", name))
        return Namespace(name, found["metadata"].get("labels", {})) if found else None

    def cluster_objects(self, kind: str, selector: str) -> list[ClusterObject]:
        self.calls.append(("cluster_objects", kind, selector))
        return [
            ClusterObject(kind, name, o["metadata"].get("labels", {}))
            for (k, _, name), o in sorted(self.objects.items())
            if k == kind and selects(selector, o["metadata"].get("labels", {}))
        ]

    def cluster_object(self, kind: str, name: str) -> ClusterObject | None:
        self.calls.append(("cluster_object", kind, name))
        found = self.objects.get((kind, "", name))
        return ClusterObject(kind, name, found["metadata"].get("labels", {})) if found else None

    def delete_cluster_object(self, kind: str, name: str) -> None:
        self.calls.append(("delete_cluster_object", kind, name))
        self.objects.pop((kind, "", name), None)

    def namespaces(self, selector: str) -> list[Namespace]:
        self.calls.append(("namespaces", selector))
        for name in list(self.terminating):
            self.terminating[name] -= 1
            if self.terminating[name] < 0:
                del self.terminating[name]
                self.objects = {
                    key: o
                    for key, o in self.objects.items()
                    if name not in (key[1], key[2] if key[0] == "Namespace" else None)
                }
        return [
            Namespace(name, o["metadata"].get("labels", {}), name in self.terminating)
            for (kind, _, name), o in sorted(self.objects.items())
            if kind == "Namespace" and selects(selector, o["metadata"].get("labels", {}))
        ]

    def delete_namespace(self, name: str) -> None:
        self.calls.append(("delete_namespace", name))
        if ("Namespace", "", name) in self.objects:
            self.terminating.setdefault(name, self.deletion_polls)

    def request_token(self, namespace: str, service_account: str, seconds: int) -> Token:
        self.calls.append(("request_token", namespace, service_account, seconds))
        if ("ServiceAccount", namespace, service_account) not in self.objects:
            raise LabError(f"serviceaccounts {service_account} not found in {namespace}")
        if self.fail_token_for == namespace:
            self.fail_token_for = None
            raise LabError("the API server went away")
        expires = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
        return Token(f"token-of-{namespace}", expires)

    def endpoint(self) -> Endpoint:
        return Endpoint(
            "https://workshop.example:6443",
            "Q0EtREFUQQ==",
            False,
            "api.workshop.internal",
            "socks5://bastion.example:1080",
        )

    def object_state(self, namespace: str, kind: str, name: str) -> ObjectState:
        self.calls.append(("object_state", namespace, kind, name))
        return self.states.get((namespace, kind, name), ObjectState(False))

    def config_maps(self, namespace: str, selector: str) -> list[dict[str, str]]:
        self.calls.append(("config_maps", namespace, selector))
        return self.config_map_data.get(namespace, [])


@pytest.fixture
def fake_api() -> RecordingFakeInstructorApi:
    return RecordingFakeInstructorApi()
