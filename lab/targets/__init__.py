"""Targets bring the stack up (`kind` cluster or `local` processes) and describe its endpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lab.errors import LabError, TargetUnavailableError
from lab.settings import Settings


@dataclass(frozen=True)
class Endpoints:
    """Where a running stack answers (URLs without a trailing slash)."""

    target: str
    backend: str
    backends: list[str] = field(default_factory=list)
    prometheus: str = ""
    grafana: str | None = None
    chaos_token: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """The one-line JSON printed by `python -m lab up --json`."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoints:
        """Read endpoints from a dict that may carry extra keys (the state file adds pid...)."""
        try:
            return cls(
                target=data["target"],
                backend=data["backend"],
                backends=list(data["backends"]),
                prometheus=data["prometheus"],
                grafana=data.get("grafana"),
                chaos_token=data["chaos_token"],
            )
        except (KeyError, TypeError) as exc:
            raise LabError(
                f"The lab state is incomplete (missing {exc}).",
                "Stop the lab (`lab.shutdown()`) and start it again.",
            ) from exc


class Target(Protocol):
    """What `python -m lab up` drives: `up()` returns once every part is ready."""

    name: str

    def up(self) -> Endpoints: ...

    def down(self) -> None: ...


@dataclass(frozen=True)
class Choice:
    """Which target to use, and why (one line for the learner)."""

    name: str
    reason: str


def docker_problem() -> str | None:
    """None when the Docker daemon answers, else what is wrong with Docker."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 15 s"
    if result.returncode != 0:
        return "Docker is not running"
    return None


def choose(requested: str, settings: Settings) -> Choice:
    """Resolve "auto" to kind (Docker answers and a kind binary can be had) or local; keep
    explicit choices."""
    if requested == "local":
        return Choice("local", "target=local (requested): local processes, no cluster")
    problem = docker_problem()
    if requested == "kind":
        if problem:
            raise TargetUnavailableError(
                f"Cannot use the kind target: {problem}.", "Start Docker, or use --target local."
            )
        return Choice("kind", "target=kind (requested): Docker answers")
    if requested != "auto":
        raise LabError(f"Unknown target {requested!r}.", "Use auto, kind or local.")
    if problem:
        return Choice("local", f"target=local (auto): {problem}, so no kind cluster")
    from lab.targets.kind import kind_binary  # imported only when Docker answers: it is heavy

    try:
        kind = kind_binary(settings)  # on PATH, cached, or downloaded now
    except TargetUnavailableError as exc:
        return Choice(
            "local", f"target=local (auto): Docker answers but kind does not: {exc.problem}"
        )
    return Choice("kind", f"target=kind (auto): Docker answers and kind is at {kind}")


def make_target(name: str, settings: Settings, replicas: int | None = None) -> Target:
    """The target object for `name` ("local" or "kind"), imported lazily."""
    if name == "local":
        from lab.targets.local import LocalTarget

        return LocalTarget(settings, settings.replicas if replicas is None else replicas)
    if name == "kind":
        if replicas is not None:
            raise LabError(
                "--replicas applies to the local target only: on kind the "
                "HorizontalPodAutoscaler sets the number of backend pods.",
                "Drop --replicas (or change the HPA in manifests/base).",
            )
        from lab.targets.kind import KindTarget

        return KindTarget(settings)
    raise LabError(f"Unknown target {name!r}.", "Use kind or local.")
