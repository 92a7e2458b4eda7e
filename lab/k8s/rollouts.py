"""Rollouts: reading a Deployment or StatefulSet, waiting for it, restarting it, sampling its
progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.i18n import _
from lab.k8s.objects import Rollout, RolloutSample
from lab.k8s.pods import Pods
from lab.waits import poll

if TYPE_CHECKING:
    import pandas as pd

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` stamps


class Rollouts(Pods):
    """Following a workload's rollout until its pods are ready."""

    def _api_of(self, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """The (read, patch) calls of a workload kind."""
        calls = {
            "StatefulSet": (
                self.apps.read_namespaced_stateful_set,
                self.apps.patch_namespaced_stateful_set,
            ),
            "Deployment": (
                self.apps.read_namespaced_deployment,
                self.apps.patch_namespaced_deployment,
            ),
        }
        if kind not in calls:
            raise LabError(
                _("Cannot follow a rollout of kind {kind}.").format(kind=kind),
                _("Use Deployment or StatefulSet."),
            )
        return calls[kind]

    def rollout(self, name: str, kind: str = "Deployment") -> Rollout:
        """A Deployment's or StatefulSet's counts, and whether its rollout is complete."""
        read, _patch = self._api_of(kind)
        return Rollout.of(
            self._call(
                _("read {kind}/{name}").format(kind=kind, name=name),
                lambda: read(name, self.namespace),
            ),
            kind,
        )

    def rollouts(self, kind: str) -> list[Rollout]:
        """Every Deployment or StatefulSet of the namespace, sorted by name."""
        lists = {
            "StatefulSet": self.apps.list_namespaced_stateful_set,
            "Deployment": self.apps.list_namespaced_deployment,
        }
        found: Any = self._call(
            _("list {kind}s").format(kind=kind), lambda: lists[kind](self.namespace)
        )
        return sorted((Rollout.of(w, kind) for w in found.items), key=lambda r: r.name)

    def wait_rollout(
        self,
        name: str,
        kind: str = "Deployment",
        timeout: float = 300.0,
        selector: str | None = None,
    ) -> Rollout:
        """Wait until the rollout is complete and as many of its pods are ready (and not
        terminating) as it wants; on timeout, the diagnostics of its pods.

        The pod count closes a race the status counts leave open: right after a pod is killed
        the controller may not have noticed yet, and its status still says "all available".
        `selector` defaults to the workload's own matchLabels. What waiting cannot fix (an image
        that cannot be pulled, the quota, Pod Security) fails at once (`blocker`).
        """
        pods = selector
        since = datetime.now(UTC)

        def done() -> Rollout | None:
            nonlocal pods
            rollout = self.rollout(name, kind)
            pods = pods or rollout.selector
            if not rollout.complete or len(self.ready_pod_names(pods)) < rollout.desired:
                if blocked := self.blocker(pods, since):
                    raise blocked
                return None
            return rollout

        return poll(
            done,
            what=_("{kind} {name} rollout").format(kind=kind, name=name),
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: self.diagnose(pods or f"app={name}"),
        )

    def restart(self, name: str, kind: str = "Deployment") -> str:
        """Trigger a rolling update, like `kubectl rollout restart`; returns the stamp used."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        _read, patch_call = self._api_of(kind)
        self._call(
            _("restart {kind}/{name}").format(kind=kind, name=name),
            lambda: patch_call(name, self.namespace, patch),
        )
        return stamp

    def rollout_timeline(
        self, name: str, timeout: float = 300.0, interval: float = 1.0
    ) -> list[RolloutSample]:
        """Sample a Deployment's replica counts until its rollout completes (at least twice)."""
        start = time.monotonic()
        samples = []
        while True:
            rollout = self.rollout(name, "Deployment")
            counts = {k: v for k, v in asdict(rollout).items() if k in RolloutSample.COUNTS}
            samples.append(RolloutSample(t=round(time.monotonic() - start, 2), **counts))
            if rollout.complete and len(samples) > 1:
                return samples
            if time.monotonic() - start > timeout:
                raise LabError(
                    _("Deployment {name} did not finish its rollout in {timeout} s.").format(
                        name=name, timeout=f"{timeout:g}"
                    ),
                    _("Look at env.k8s.diagnose('app={name}').").format(name=name),
                )
            time.sleep(interval)

    def rollout_timeline_frame(
        self, name: str, timeout: float = 300.0, interval: float = 1.0
    ) -> pd.DataFrame:
        """`rollout_timeline` as a table, one row per sample (what `lab.plots.rollout_timeline`
        draws)."""
        from lab.k8s.frames import timeline_frame

        return timeline_frame(self.rollout_timeline(name, timeout, interval))
