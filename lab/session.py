"""`lab.connect()` / `lab.shutdown()`: a notebook's handle on the stack `lab up` runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from lab import stack
from lab.errors import LabError, LabNotRunningError, NeedsClusterError
from lab.settings import Settings, get_settings, peer_namespace
from lab.stack import StackProcess, read_state
from lab.targets import Endpoints, choose

if TYPE_CHECKING:
    from lab.chaos import BackendChaos
    from lab.k8s import Cluster
    from lab.prom import Prom


@dataclass
class Lab:
    """A handle on the running stack; `prom`, `chaos` and `k8s` are created on first use."""

    endpoints: Endpoints
    namespace: str
    pid: int
    reason: str
    settings: Settings = field(repr=False)
    started: StackProcess | None = field(default=None, repr=False)  # set when connect() started it

    @property
    def target(self) -> str:
        return self.endpoints.target

    @property
    def on_cluster(self) -> bool:
        return self.target != "local"

    @property
    def peer_namespace(self) -> str:
        """Where lesson 05 probes from another namespace (`lab.settings.peer_namespace`)."""
        return peer_namespace(self.namespace, self.target)

    @cached_property
    def prom(self) -> Prom:
        from lab.prom import Prom

        return Prom(self.endpoints.prometheus)

    @cached_property
    def chaos(self) -> BackendChaos:
        from lab.chaos import BackendChaos

        return BackendChaos(self.endpoints.backends, self.endpoints.chaos_token)

    @cached_property
    def k8s(self) -> Cluster:
        if not self.on_cluster:
            raise NeedsClusterError(
                f"This needs a Kubernetes cluster, but the lab runs on target={self.target}.",
                "Skip this cell (it is tagged needs-cluster), or start Docker and run the lab "
                "with target='kind'.",
            )
        from lab.targets import cluster_client

        return cluster_client(self.target, self.namespace, self.settings)


def connect(target: str = "auto", start: bool = True, settings: Settings | None = None) -> Lab:
    """Attach to the running lab, or start `lab up` in the background and wait for it."""
    settings = settings or get_settings()
    state = read_state(settings.state_file)
    if state is not None:
        running = state.endpoints.target
        if target not in ("auto", running):
            raise LabError(
                f"A lab on target={running} is running (pid {state.pid}); you asked "
                f"for target={target}.",
                "Use it, or stop it first: lab.shutdown().",
            )
        reason = f"target={running}: attached to the running lab (pid {state.pid})"
        return Lab(state.endpoints, state.namespace, state.pid, reason, settings)
    if not start:
        raise LabNotRunningError(
            "No lab is running.",
            "Start one: `ironclad-lab up --target local` in a terminal, "
            "or lab.connect(start=True).",
        )
    choice = choose(target, settings)
    started = StackProcess(choice.name, settings)
    state = started.start()
    return Lab(state.endpoints, state.namespace, state.pid, choice.reason, settings, started)


def shutdown(settings: Settings | None = None, timeout: float = 120.0) -> bool:
    """Stop the running `lab up` (it tears everything down); False if none ran."""
    return stack.stop(settings or get_settings(), timeout) is not None
