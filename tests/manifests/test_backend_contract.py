"""The backend Deployment against the backend itself: env names it reads, the uid its image runs
as, and a grace period that covers preStop plus its drain (read from backend/, not restated)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lab import manifests
from lab.k8s import probe_pod
from lab.targets import kube

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

BACKEND = Path(__file__).resolve().parents[2] / "backend"


@pytest.fixture(scope="module")
def backend_pod(kind_objects: list[manifests.Obj], namespace: str) -> dict[str, Any]:
    deployment = next(
        o for o in kind_objects if manifests.ident(o) == ("Deployment", namespace, "backend")
    )
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container_env(kind_objects: list[manifests.Obj], pod: dict[str, Any]) -> dict[str, str]:
    """Every variable the backend container gets (envFrom ConfigMaps resolved), name -> value
    ("<secret>" for values taken from a Secret). The lab's ConfigMaps are the only ones."""
    container = pod["containers"][0]
    maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in kind_objects if o["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", "<secret>")
    return env


def test_every_variable_set_is_one_the_backend_reads(
    kind_objects: list[manifests.Obj], backend_pod: dict[str, Any]
) -> None:
    source = (BACKEND / "settings.py").read_text()
    read = set(re.findall(r"env(?:\.get\(|, )\"([A-Z_]+)\"", source))
    assert {"PORT", "CHAOS_TOKEN", "LOG_LEVEL", "POSTGRES_PASSWORD"} <= read  # the regex works
    env = container_env(kind_objects, backend_pod)
    assert set(env) <= read, f"set but never read by backend/settings.py: {set(env) - read}"
    assert {f"POSTGRES_{k}" for k in ("HOST", "PORT", "DB", "USER", "PASSWORD")} <= set(env)
    assert env["PORT"] == str(backend_pod["containers"][0]["ports"][0]["containerPort"])


def test_probe_pod_runs_as_the_image_user() -> None:
    match = re.search(r"^USER (\d+):(\d+)$", (BACKEND / "Dockerfile").read_text(), re.M)
    assert match, "backend/Dockerfile must name a numeric USER uid:gid"
    pod: Any = probe_pod("p", "tcp://x:1", {}, "i")
    assert pod.spec.containers[0].security_context.run_as_user == int(match[1])


def test_backend_runs_as_its_image_user(backend_pod: dict[str, Any]) -> None:
    match = re.search(r"^USER (\d+):(\d+)$", (BACKEND / "Dockerfile").read_text(), re.M)
    assert match
    context = backend_pod["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (int(match[1]), int(match[2]))


def test_grace_period_covers_prestop_and_the_backends_drain(
    kind_objects: list[manifests.Obj], backend_pod: dict[str, Any]
) -> None:
    from backend.settings import Settings

    env = container_env(kind_objects, backend_pod)
    settings = Settings.from_env({k: v for k, v in env.items() if v != "<secret>"})
    pre_stop = backend_pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    needed = pre_stop + settings.drain_delay_s + settings.shutdown_timeout_s
    assert backend_pod["terminationGracePeriodSeconds"] >= needed + 5, (
        f"preStop {pre_stop} s + drain {settings.drain_delay_s} s + graceful shutdown "
        f"{settings.shutdown_timeout_s} s leave no margin before SIGKILL"
    )


def test_tmp_is_writable_under_a_read_only_root(backend_pod: dict[str, Any]) -> None:
    container = backend_pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in backend_pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_backend_listens_on_the_pod_ip(
    kind_objects: list[manifests.Obj], backend_pod: dict[str, Any]
) -> None:
    """Probes, the Service and Prometheus reach the pod IP: loopback-only would fail them all."""
    from backend.settings import Settings

    env = container_env(kind_objects, backend_pod)
    settings = Settings.from_env({k: v for k, v in env.items() if v != "<secret>"})
    assert getattr(settings, "host", "0.0.0.0") in ("0.0.0.0", "::")


def test_liveness_waits_for_the_backends_database_startup(
    kind_objects: list[manifests.Obj], backend_pod: dict[str, Any]
) -> None:
    """The backend serves nothing until its pool is open (up to DB_STARTUP_TIMEOUT_S): the
    kubelet must not kill it for that, or every cold start ends in CrashLoopBackOff."""
    from backend.settings import Settings

    env = container_env(kind_objects, backend_pod)
    settings = Settings.from_env({k: v for k, v in env.items() if v != "<secret>"})
    container = backend_pod["containers"][0]
    first = container.get("startupProbe") or container["livenessProbe"]
    # the kill comes with the failureThreshold-th failed probe, counted from the first one
    tolerated = first.get("initialDelaySeconds", 0) + (
        first.get("periodSeconds", 10) * (first.get("failureThreshold", 3) - 1)
    )
    assert tolerated > settings.db_startup_timeout_s, (
        f"the kubelet gives up after {tolerated} s; the backend may wait "
        f"{settings.db_startup_timeout_s} s for PostgreSQL before it listens"
    )


@pytest.mark.parametrize("forwarded", kube.FORWARDED, ids=lambda f: f.name)
def test_what_lab_up_forwards_exists_in_the_kind_overlay(
    kind_objects: list[manifests.Obj], namespace: str, forwarded: kube.Forwarded
) -> None:
    """lab/targets/kube.py (kind and cluster) forwards a pod port and polls a readiness path:
    both must be what the matching pods declare (port-forward bypasses Services, so the
    container port counts)."""
    selector, port, health = forwarded.selector, forwarded.port, forwarded.ready_path
    wanted = dict(term.split("=") for term in selector.split(",") if "=" in term)
    pods = [
        o["spec"]["template"]
        for o in kind_objects
        if o["kind"] in ("Deployment", "StatefulSet")
        and o["metadata"].get("namespace") == namespace
        and wanted.items() <= o["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(pods) == 1, f"{selector} must select exactly one workload's pods"
    (container,) = [
        c
        for c in pods[0]["spec"]["containers"]
        if port in [p["containerPort"] for p in c.get("ports", [])]
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == health


def test_postgres_and_backend_read_the_same_credentials(
    kind_objects: list[manifests.Obj], backend_pod: dict[str, Any], namespace: str
) -> None:
    """PostgreSQL creates POSTGRES_DB/USER/PASSWORD at initdb; the backend must log in with the
    very same values (same ConfigMap keys, same Secret key)."""
    postgres = next(
        o for o in kind_objects if manifests.ident(o) == ("StatefulSet", namespace, "postgres")
    )
    server = {v["name"]: v for v in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    backend = container_env(kind_objects, backend_pod)
    maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in kind_objects if o["kind"] == "ConfigMap"
    }
    for key in ("POSTGRES_DB", "POSTGRES_USER"):
        ref = server[key]["valueFrom"]["configMapKeyRef"]
        assert maps[ref["name"]][ref["key"]] == backend[key]
    server_secret = server["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    (backend_secret,) = [
        v["valueFrom"]["secretKeyRef"]
        for v in backend_pod["containers"][0]["env"]
        if v["name"] == "POSTGRES_PASSWORD"
    ]
    assert server_secret == backend_secret
    assert server["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")  # a subdirectory
