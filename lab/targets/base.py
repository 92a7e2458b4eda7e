"""What every target shares: the `Endpoints` it returns, the `Target` protocol, Docker's state."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lab.errors import LabError
from lab.i18n import _
from lab.identity import Identity


@dataclass(frozen=True)
class Endpoints:
    """Where a running stack answers (URLs without a trailing slash). `backend` is the lab's
    own Service-like entry (a forward that picks ready pods; local: the first replica),
    `backends` one URL per replica, `service` the backend's real Service as this machine
    reaches it ("" where none is reachable from here: the kind target's NodePort only)."""

    target: str
    backend: str
    backends: list[str] = field(default_factory=list)
    prometheus: str = ""
    grafana: str | None = None
    chaos_token: str = ""
    service: str = ""

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
                service=data.get("service", ""),  # absent in a state an older lab wrote
            )
        except (KeyError, TypeError) as exc:
            raise LabError(
                _("The lab state is incomplete (missing {key}).").format(key=exc),
                _("Stop the lab (`lab.shutdown()`) and start it again."),
            ) from exc


@dataclass(frozen=True)
class ReplicaRecord:
    """A supervised local replica: how often it was restarted and how it last exited
    (137 = the backend's out-of-memory exit; negative = killed by that signal)."""

    url: str
    restarts: int = 0
    last_exit_code: int | None = None


class Target(Protocol):
    """What `python -m lab up` drives: `up()` returns once the parts it was made with
    (`lab.lessons.PARTS`) are built and ready; `build(parts)` makes exactly those built;
    `identity` is where its Kubernetes calls go (None on the local target); `records` what its
    supervisor knows of each backend replica, kept in the state file (empty where a cluster
    supervises the pods)."""

    name: str
    identity: Identity | None
    parts: tuple[str, ...]

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def records(self) -> tuple[ReplicaRecord, ...]: ...

    def up(self) -> Endpoints: ...

    def build(self, parts: Sequence[str]) -> None: ...

    def down(self) -> None: ...


def docker_info(template: str) -> subprocess.CompletedProcess[str]:
    """`docker info --format TEMPLATE`, answered within 15 s (else TimeoutExpired)."""
    return subprocess.run(
        ["docker", "info", "--format", template],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )


def docker_problem() -> str | None:
    """None when the Docker daemon answers, else what is wrong with Docker."""
    if shutil.which("docker") is None:
        return _("docker is not installed")
    try:
        result = docker_info("{{.ServerVersion}}")
    except subprocess.TimeoutExpired:
        return _("docker info did not answer within 15 s")
    if result.returncode != 0:
        return _("Docker is not running")
    return None
