"""One recorded identity (issue 19, item 4): the state file records where a kind/cluster lab
lives, and `reset` (through the CLI), the notebooks' `lab.connect()` and the runner's records act
on it, not on the shell's or kernel's environment.

Against the recording fake API server (tests/plugins/fake_kube_api.py): it proves which calls
are made, where, and that they stay within the learner Role (`lab.rbac`); it is not a cluster.
The backend pods
behind the recorded endpoints are stood in for by `ChaosOff`, which answers the chaos API the
way a backend with chaos off does.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lab import rbac
from lab.cli import main
from lab.credentials import generate
from lab.errors import LabError
from lab.identity import Identity, kubeconfig_path, resolve
from lab.k8s import NamespaceClient
from lab.lessons import EXERCISE_LABEL
from lab.manifests import render
from lab.settings import DEFAULT_NAMESPACE, Settings
from lab.stack import State, read_state, write_state
from lab.targets import Endpoints

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

LEARNER_NS = "learner-07"
IMAGE = "registry.example/ironclad-backend:7"


class ChaosOff(BaseHTTPRequestHandler):
    """A backend replica with chaos off: ready, its chaos state all zero, items answering."""

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/api/chaos"):
            self._json({"enabled": False, "latency_ms": 0, "error_ratio": 0.0})
        elif self.path.startswith("/api/items"):
            self._json({"items": [], "next": None})
        else:
            self._json({"status": "ok"})

    def do_POST(self) -> None:
        self._json({"enabled": False, "latency_ms": 0, "error_ratio": 0.0, "held_mb": 0})


@pytest.fixture
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChaosOff)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def kubeconfig_file(path: Path, server: str, context: str, namespace: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {
                        "name": context,
                        "context": {"cluster": "c", "user": "u", "namespace": namespace},
                    }
                ],
                "current-context": context,
            }
        )
    )
    return path


def running_lab(settings: Settings, target: str, backend: str, identity: Identity) -> None:
    """Record a lab of `target` as `lab up` does: this process stands in for its pid."""
    endpoints = Endpoints(target, backend, [backend] * 3, backend, None, "token")
    write_state(
        settings.state_file, State(endpoints, os.getpid(), identity.namespace, identity=identity)
    )


@pytest.fixture
def settings(tmp_path: Path, discovery_cache: None) -> Settings:
    return replace(
        Settings.from_env({}),
        state_file_override=tmp_path / "state.json",
        rollout_timeout=10.0,
        ready_timeout=5.0,
        restart_delay=0.0,
    )


def test_the_state_file_keeps_the_identity(tmp_path: Path, settings: Settings) -> None:
    identity = Identity("ctx", LEARNER_NS, str(tmp_path / "kc"), IMAGE, shared=True)
    running_lab(settings, "cluster", "http://127.0.0.1:1", identity)
    state = read_state(settings.state_file)
    assert state is not None
    assert state.kubernetes() == identity
    data = json.loads(settings.state_file.read_text())
    assert data["kubernetes"] == {
        "context": "ctx",
        "namespace": LEARNER_NS,
        "kubeconfig": str(tmp_path / "kc"),
        "image": IMAGE,
        "shared": True,
    }


def test_resolve_pins_the_current_context_and_the_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kubeconfig_file(tmp_path / "kc", "http://127.0.0.1:1", "team-a", LEARNER_NS)
    monkeypatch.setenv("KUBECONFIG", str(path))
    identity = resolve(LEARNER_NS, image=IMAGE, shared=True)
    assert (identity.context, identity.kubeconfig) == ("team-a", str(path))  # not "current"
    monkeypatch.delenv("KUBECONFIG")
    assert kubeconfig_path() == str(Path("~/.kube/config").expanduser())
    with pytest.raises(LabError, match="has no context 'team-b' \\(it has: team-a\\)") as info:
        resolve(LEARNER_NS, "team-b", kubeconfig=str(path), fix="Pass --context.")
    assert info.value.next_step == "Pass --context."


def test_an_older_state_file_without_an_identity_asks_for_a_restart(
    settings: Settings, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = Endpoints("kind", backend, [backend], backend, None, "token")
    write_state(settings.state_file, State(endpoints, os.getpid(), DEFAULT_NAMESPACE))
    assert main(["reset", "--to", "3"], settings) == 1
    error = capsys.readouterr().err
    assert "did not record its Kubernetes identity" in error
    assert "ironclad-lab down" in error


def test_reset_on_the_cluster_target_uses_the_recorded_identity_and_the_learner_role(
    fake: FakeApiServer,
    tmp_path: Path,
    settings: Settings,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's "reset works on the cluster target against the fake API", through the CLI:
    the learner's kubeconfig and context (recorded; the shell has neither), the cluster overlay
    with the learner's image, every request in the learner's namespace and granted by the
    learner Role."""
    fake.namespaces |= {LEARNER_NS, "other"}
    path = kubeconfig_file(tmp_path / "learner.kubeconfig", fake.url, "learner", LEARNER_NS)
    identity = resolve(LEARNER_NS, "learner", image=IMAGE, shared=True, kubeconfig=str(path))
    credentials = generate()
    stack = render("cluster", settings, namespace=LEARNER_NS, image=IMAGE, credentials=credentials)
    NamespaceClient.connect(identity).apply(stack)
    exercise = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "mine", "namespace": LEARNER_NS, "labels": {EXERCISE_LABEL: "02"}},
    }
    fake.put(exercise)
    fake.deployments["backend"]["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    running_lab(settings, "cluster", backend, identity)
    fake.calls.clear()
    monkeypatch.delenv("KUBECONFIG", raising=False)  # nothing but the state file says where
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config either

    assert main(["reset", "--to", "7"], settings) == 0  # 07 expects every part: all re-applied

    out = capsys.readouterr().out
    assert f"resetting context learner, namespace {LEARNER_NS}" in out
    assert "deleted ConfigMap/mine" in out
    backend_container = fake.deployments["backend"]["spec"]["template"]["spec"]["containers"][0]
    assert backend_container["image"] == IMAGE  # the cluster overlay, the learner's image
    secret = fake.store.objects[("v1", "secrets", LEARNER_NS, "postgres-secret")]
    kept = base64.b64decode(secret["data"]["POSTGRES_PASSWORD"]).decode()
    assert kept == credentials["postgres-secret"]["POSTGRES_PASSWORD"]  # the stack keeps its own
    used = fake.rules()
    assert {namespace for _, namespace in used} == {LEARNER_NS}
    assert sorted({rule for rule, _ in used} - rbac.LEARNER_RULES) == []
    assert not [p for m, p in fake.requests if m != "GET" and "/namespaces/" not in p]

    assert main(["status"], settings) == 0  # the same identity: what runs there, and the login
    out = capsys.readouterr().out
    assert f"context:    learner ({path})" in out
    assert "pods:       " in out
    password = credentials["grafana-admin"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert f"grafana login: admin / {password}" in out


def test_reset_on_kind_acts_on_the_recorded_namespace_not_lab_namespace(
    fake: FakeApiServer,
    tmp_path: Path,
    settings: Settings,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lab started with --namespace X and reset without LAB_NAMESPACE acts on X: no second
    stack in the default namespace."""
    fake.namespaces |= {"team-x", "kube-system"}
    path = kubeconfig_file(tmp_path / "kind.kubeconfig", fake.url, "kind-ironclad", "default")
    identity = resolve("team-x", "kind-ironclad", image=settings.built_image, kubeconfig=str(path))
    NamespaceClient.connect(identity).apply(render("kind", settings, namespace="team-x"))
    running_lab(settings, "kind", backend, identity)
    fake.requests.clear()
    monkeypatch.delenv("LAB_NAMESPACE", raising=False)
    assert settings.namespace == DEFAULT_NAMESPACE

    assert main(["reset", "--to", "7"], settings) == 0  # every part: nothing to build

    touched = {
        p.split("/namespaces/")[1].split("/")[0] for _, p in fake.requests if "/namespaces/" in p
    }
    assert "team-x" in touched
    assert DEFAULT_NAMESPACE not in touched
    assert f"namespaces/{DEFAULT_NAMESPACE}" not in fake.applied


def test_a_notebook_attaches_to_the_recorded_namespace_when_its_parameter_is_none(
    settings: Settings, backend: str, tmp_path: Path
) -> None:
    from lab.session import connect, session_namespace

    identity = Identity("kind-ironclad", "team-x", str(tmp_path / "kc"), settings.built_image)
    running_lab(settings, "kind", backend, identity)
    env = connect(target=None, namespace=None, settings=settings)
    assert (env.target, env.namespace, env.identity) == ("kind", "team-x", identity)
    assert session_namespace() == "team-x"  # what the notebook's renders and verifiers use
    with pytest.raises(LabError, match="uses namespace team-x; you asked for learner-07"):
        connect(namespace=LEARNER_NS, settings=settings)
