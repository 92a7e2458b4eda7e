"""Errors a learner can act on (issue 19, item 5): an API server that does not answer, a TLS
failure, an expired token (401), a refusal (403, naming the verb and resource), a used-up quota
and an image that cannot be pulled each end a command with one message naming the kubeconfig
context and the fix — no traceback.

Made for real: a socket nobody listens on, a TLS server whose certificate the kubeconfig's CA
did not sign (openssl makes both), the recording fake API server answering 401/403 the way
kube-apiserver words them. What is checked is the text the learner reads (`ironclad-lab`'s
stderr, a notebook cell's error output), not the explaining function called alone.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from IPython.core.interactiveshell import InteractiveShell

from lab.cli import main
from lab.identity import Identity, resolve
from lab.k8s import ApiUnreachableError
from lab.rbac import Rule
from lab.settings import Settings, find_repo_root
from lab.stack import State, write_state
from lab.targets import Endpoints
from lab.workshop.api import KubeInstructorApi
from lab.workshop.status import status as workshop_status

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

NS = "ironclad-demo"  # the fake's namespace
IMAGE = "registry.example/ironclad-backend:7"


def kubeconfig(path: Path, server: str, context: str = "learner", ca: bytes | None = None) -> Path:
    cluster: dict[str, object] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": context, "context": {"cluster": "c", "user": "u", "namespace": NS}}
                ],
                "current-context": context,
            }
        )
    )
    return path


@pytest.fixture
def settings(tmp_path: Path, discovery_cache: None) -> Settings:
    return replace(
        Settings.from_env({}), state_file_override=tmp_path / "state.json", rollout_timeout=10.0
    )


def record(settings: Settings, path: Path, context: str = "learner") -> Identity:
    """A running cluster lab whose recorded identity is `path`'s `context` (this process
    stands in for its `lab up`)."""
    identity = resolve(NS, context, image=IMAGE, shared=True, kubeconfig=str(path))
    endpoints = Endpoints("cluster", "http://127.0.0.1:1", [], "http://127.0.0.1:1", None, "t")
    write_state(settings.state_file, State(endpoints, os.getpid(), NS, identity=identity))
    return identity


def one_message(err: str) -> list[str]:
    """The error of a command: `error: <problem>` and `→ <fix>`, the last thing it printed
    (before it, at most the progress lines of its waits), and no traceback anywhere."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-2:-1], err
    assert lines[-1].startswith("→ "), err
    return lines[-2:]


@pytest.fixture
def refused_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_api_server_that_does_not_answer_is_one_line_in_status_and_reset(
    tmp_path: Path, settings: Settings, refused_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    record(settings, kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{refused_port}"))
    assert main(["status"], settings) == 1
    problem, fix = one_message(capsys.readouterr().err)
    assert f"context learner (http://127.0.0.1:{refused_port})" in problem
    assert "does not answer (connection refused)" in problem
    assert "kubectl --context learner cluster-info" in fix
    assert main(["reset", "--to", "3"], settings) == 1
    problem, _ = one_message(capsys.readouterr().err)
    assert "does not answer (connection refused)" in problem


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself (openssl): (cert, key)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server with a self-signed certificate (it answers nothing useful: TLS fails
    before any request)."""
    cert, key = self_signed(tmp_path, "server")
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_certificate_the_kubeconfig_does_not_trust_is_one_line(
    tmp_path: Path, settings: Settings, tls_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    other_ca, _ = self_signed(tmp_path, "other-ca")  # e.g. the cluster before it was re-created
    path = kubeconfig(tmp_path / "kc", tls_server, "kind-ironclad", ca=other_ca.read_bytes())
    record(settings, path, "kind-ironclad")
    assert main(["status"], settings) == 1
    problem, fix = one_message(capsys.readouterr().err)
    assert f"TLS to the API server of context kind-ironclad ({tls_server}) failed" in problem
    assert "certificate verify failed" in problem
    assert "kind export kubeconfig" in fix


def test_an_expired_token_is_one_line_naming_the_context(
    fake: FakeApiServer, tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.refuse[Rule("list", "", "pods")] = (401, "Unauthorized")
    record(settings, kubeconfig(tmp_path / "kc", fake.url))
    assert main(["status"], settings) == 1
    problem, fix = one_message(capsys.readouterr().err)
    assert "context learner did not accept your credentials (401 Unauthorized" in problem
    assert "fresh kubeconfig" in fix


def test_up_refused_by_rbac_names_the_verb_resource_and_context(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    """`ironclad-lab up --target cluster` as a learner runs it (a process of its own)."""
    message = (
        'networkpolicies.networking.k8s.io "backend" is forbidden: User '
        '"system:serviceaccount:ironclad-workshop:learner-07" cannot patch resource '
        f'"networkpolicies" in API group "networking.k8s.io" in the namespace "{NS}"'
    )
    fake.refuse[Rule("patch", "networking.k8s.io", "networkpolicies")] = (403, message)
    path = kubeconfig(tmp_path / "learner.kubeconfig", fake.url)
    argv = ["up", "--target", "cluster", "--namespace", NS, "--image", IMAGE]
    argv += ["--state-file", str(tmp_path / "state.json"), "--context", "learner"]
    env = {**os.environ, "KUBECONFIG": str(path), "LAB_ROLLOUT_TIMEOUT": "10"}
    done = subprocess.run(
        [sys.executable, "-m", "lab", "-q", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=find_repo_root(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    problem, fix = one_message(done.stderr)
    assert "In context learner, the API server refused to apply NetworkPolicy/" in problem
    assert (
        "system:serviceaccount:ironclad-workshop:learner-07 may not patch networkpolicies "
        f"(API group networking.k8s.io) in namespace {NS} (403 Forbidden)"
    ) in problem
    assert "workshop provision" in fix


def test_workshop_status_against_an_api_server_that_does_not_answer_is_one_line(
    tmp_path: Path,
    refused_port: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = kubeconfig(tmp_path / "admin", f"http://127.0.0.1:{refused_port}", "admin")
    with pytest.raises(ApiUnreachableError, match="The API server of context admin"):
        workshop_status(KubeInstructorApi(kubeconfig=path), "ws")
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert main(["workshop", "status", "--workshop", "ws"]) == 1
    problem, _ = one_message(capsys.readouterr().err)
    assert "does not answer (connection refused)" in problem


def test_a_lab_error_in_a_notebook_cell_is_its_message_not_a_traceback(
    fake: FakeApiServer, tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a learner sees in a cell when the cluster refuses: the message (the kernel's shell
    with the lab's extension loaded), and the cell still fails."""
    fake.refuse[Rule("list", "", "pods")] = (401, "Unauthorized")
    identity = record(settings, kubeconfig(tmp_path / "kc", fake.url))
    shell = InteractiveShell.instance()
    try:
        shell.extension_manager.load_extension("lab.magics")
        shell.user_ns["identity"] = identity
        result = shell.run_cell(
            "from lab.k8s import NamespaceClient\nNamespaceClient.connect(identity).pods()"
        )
    finally:
        InteractiveShell.clear_instance()
    assert not result.success
    shown = capsys.readouterr().out
    assert "ForbiddenError: The API server of context learner did not accept" in shown
    assert "Traceback" not in shown
