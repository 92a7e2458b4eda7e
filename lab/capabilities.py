"""Capability probes: does this cluster do what a lesson is about to rely on?

`network_policy_enforced()` (preflight in 00, and before 05's enforcement cells): a probe pod
under the lab's default-deny policy must be refused. Policies are only data to the API server;
the network plugin enforces them, and some fail open (kindnet's policy controller where the host
kernel lacks what it needs, e.g. some WSL2 / Docker Desktop kernels; flannel never enforces).
`metrics_server_serving()` (before the HPA lesson): the HPA must read CPU from the metrics API.

Each returns a `Capability`. When it is missing, a notebook skips the checks that depend on it
with `capability.skip("what")`, which says why in one line and publishes a
`application/vnd.ironclad.skip+json` output the report can count, instead of failing with a
misleading message (in the learner's language: lab.i18n). Built on
`lab.k8s.NamespaceClient.probe` and `.hpa` (nothing beyond the learner's Role).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from lab.checks import SKIP_MIMETYPE, publish
from lab.contract import BACKEND_HPA
from lab.errors import LabError, LabTimeoutError
from lab.i18n import N_, _, translate
from lab.k8s import HpaStatus, ProbeResult
from lab.waits import poll

# The policies' allowed path (backend -> postgres:5432) and a label no policy lists.
ALLOWED_LABELS = {"app": "backend"}
STRANGER_LABELS = {"app": "lab-capability-probe"}
NOT_ENFORCED = N_(
    "this cluster does not enforce NetworkPolicy: a pod that no policy allows reached "
    "{target} through the default-deny policy ({output}). The API server stores policies; the "
    "network plugin must apply them, and some fail open — kindnet's policy controller where the "
    "host kernel lacks the nftables/conntrack support it needs (seen on some WSL2 and Docker "
    "Desktop kernels), flannel always. Use a native Linux Docker host, or a cluster whose CNI "
    "enforces policies (Calico, Cilium), to see them act."
)
NO_METRICS = N_(
    "metrics-server is not serving: {hpa} has no CPU reading after {timeout:g} s, so it cannot "
    "scale on CPU. On kind, `ironclad-lab up --target kind` installs metrics-server "
    "(kubectl -n kube-system get deploy metrics-server); on a shared cluster, ask the "
    "instructor whether the cluster runs it."
)


class Probing(Protocol):
    """What the probes need from `lab.k8s.NamespaceClient`."""

    @property
    def namespace(self) -> str: ...

    def probe(
        self,
        url: str,
        labels: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        image: str | None = None,
    ) -> ProbeResult: ...

    def hpa(self, name: str) -> HpaStatus: ...


@dataclass(frozen=True)
class Capability:
    """Whether the cluster has `name`, and what was seen (or why it is missing)."""

    name: str
    available: bool
    reason: str

    def skip(self, what: str) -> None:
        """Show, in one line, that `what` is skipped for lack of this capability and why, as an
        output the report can count (nothing is returned: a cell ending in it shows it once).
        `what` (a notebook's text) is shown translated."""
        what = translate(what)
        publish(
            {
                "text/plain": _("⏭ skipped {what}: {reason}").format(what=what, reason=self.reason),
                SKIP_MIMETYPE: {"capability": self.name, "skipped": what, "reason": self.reason},
            }
        )


def network_policy_enforced(cluster: Probing, timeout: float = 60.0) -> Capability:
    """Probe postgres:5432 from an allowed pod (it must connect: the stack is up) and from a
    pod no policy lists (it must be refused). LabError when even the allowed pod fails: then
    nothing can be concluded about enforcement."""
    target = f"tcp://postgres.{cluster.namespace}.svc.cluster.local:5432"
    allowed = cluster.probe(target, labels=ALLOWED_LABELS, timeout=timeout)
    if not allowed.ok:
        raise LabError(
            _(
                "Cannot tell whether NetworkPolicy is enforced: even a pod the policies allow "
                "(app=backend) could not reach {target} ({output})."
            ).format(target=target, output=allowed.output),
            _(
                "Bring the lab up (or wait for postgres to be ready: env.k8s.pods_frame()), then "
                "probe again."
            ),
        )
    stranger = cluster.probe(target, labels=STRANGER_LABELS, timeout=timeout)
    if stranger.ok:
        return Capability(
            "networkpolicy", False, _(NOT_ENFORCED).format(target=target, output=stranger.output)
        )
    return Capability(
        "networkpolicy",
        True,
        _("a pod under default deny was refused ({output}); an allowed one connected").format(
            output=stranger.output
        ),
    )


def metrics_server_serving(
    cluster: Probing, hpa: str = BACKEND_HPA, timeout: float = 90.0
) -> Capability:
    """Wait up to `timeout` for the HPA to read CPU from the metrics API (a fresh HPA needs one
    metrics-server scrape, about 15-60 s)."""

    def reading() -> HpaStatus | None:
        status = cluster.hpa(hpa)
        return status if status.cpu_utilization is not None else None

    try:
        status = poll(
            reading,
            what=_("{hpa} to read CPU from metrics-server").format(hpa=hpa),
            timeout=timeout,
            interval=2.0,
            progress=False,
        )
    except LabTimeoutError:
        return Capability("metrics-server", False, _(NO_METRICS).format(hpa=hpa, timeout=timeout))
    return Capability(
        "metrics-server",
        True,
        _("{hpa} reads CPU {utilization}% (target {target}%)").format(
            hpa=hpa, utilization=status.cpu_utilization, target=status.cpu_target
        ),
    )
