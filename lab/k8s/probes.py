"""Probe pods: a throwaway pod that makes one request (NetworkPolicy checks with real packets)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from kubernetes import client

from lab.errors import LabError
from lab.i18n import _
from lab.k8s.objects import PROBE_LABEL, ProbeResult
from lab.k8s.pods import Pods
from lab.waits import poll

PROBE_SCRIPT = """\
import socket, sys, urllib.error, urllib.parse, urllib.request
url = urllib.parse.urlsplit(sys.argv[1])
try:
    if url.scheme == "tcp":
        socket.create_connection((url.hostname, url.port), timeout=3).close()
        print("connected")
    else:
        print(f"HTTP {urllib.request.urlopen(sys.argv[1], timeout=3).status}")
except urllib.error.HTTPError as exc:
    print(f"HTTP {exc.code}")
except OSError as exc:
    print(f"no connection: {exc}"); sys.exit(1)
"""


# A pod whose egress (DNS included) is denied would otherwise spend ndots:5 x search domains x
# 5 s x 2 attempts in getaddrinfo (no socket timeout bounds it) and outlive the probe's wait:
# 1 s per query, one attempt, names with a dot tried as given first.
PROBE_DNS = client.V1PodDNSConfig(
    options=[
        client.V1PodDNSConfigOption(name="ndots", value="1"),
        client.V1PodDNSConfigOption(name="timeout", value="1"),
        client.V1PodDNSConfigOption(name="attempts", value="1"),
    ]
)


def probe_pod(name: str, url: str, labels: Mapping[str, str], image: str) -> client.V1Pod:
    """A pod that makes one request and exits; meets Pod Security "restricted"."""
    security = client.V1SecurityContext(
        allow_privilege_escalation=False,
        run_as_non_root=True,
        run_as_user=10001,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    # Never Ready: a probe pod that borrows `app: backend` must not join the backend Service's
    # endpoints (nothing listens on 3000 in it) nor count as healthy for the PDB.
    never_ready = client.V1Probe(
        _exec=client.V1ExecAction(command=["python", "-c", "raise SystemExit(1)"]),
        period_seconds=30,
    )
    container = client.V1Container(
        name="probe",
        image=image,
        image_pull_policy="IfNotPresent",
        command=["python", "-c", PROBE_SCRIPT, url],
        security_context=security,
        readiness_probe=never_ready,
        resources=client.V1ResourceRequirements(
            requests={"cpu": "10m", "memory": "32Mi"}, limits={"cpu": "100m", "memory": "64Mi"}
        ),
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={**labels, PROBE_LABEL: name}),
        spec=client.V1PodSpec(
            containers=[container],
            restart_policy="Never",
            automount_service_account_token=False,
            dns_config=PROBE_DNS,
        ),
    )


class Probing(Pods):
    """Probe pods in this namespace."""

    def probe(
        self,
        url: str,
        labels: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        image: str | None = None,
    ) -> ProbeResult:
        """Reach `url` (http://... GET, or tcp://host:port connect) from a short-lived pod with
        `labels`: NetworkPolicy allowed/denied checks with real packets. The pod runs the
        backend image (`probe_image`, already loaded into kind) unless `image` is given."""
        image = image or self.probe_image
        if not image:
            raise LabError(
                _("No image to run the probe pod with."),
                _("Pass image=..., or connect with NamespaceClient.connect(..., probe_image=...)."),
            )
        labels = dict(labels or {"app": "lab-probe"})
        name = f"lab-probe-{uuid.uuid4().hex[:8]}"
        self.create_pod(probe_pod(name, url, labels, image), what=_("probe pod"))
        try:
            phase = poll(
                lambda: self._finished_phase(name),
                what=_("probe pod {name}").format(name=name),
                timeout=timeout,
                interval=0.5,
                progress=False,
                diagnose=lambda: self.diagnose(f"{PROBE_LABEL}={name}"),
            )
            output = self.logs(name, tail=5)
        finally:
            self.delete_pod(name, grace_period_seconds=0)
        return ProbeResult(url, labels, phase == "Succeeded", output.strip())

    def _finished_phase(self, name: str) -> str | None:
        phase = self.pod(name).phase
        return phase if phase in ("Succeeded", "Failed") else None
