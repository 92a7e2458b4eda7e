"""Rollouts: waiting for a Deployment or StatefulSet, restarting one, sampling its progress."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lab.errors import LabError
from lab.k8s.objects import match_labels_selector, rollout_complete, rollout_row
from lab.k8s.pods import Pods
from lab.waits import poll


class Rollouts(Pods):
    """Following a workload's rollout until its pods are ready."""

    def _workload(self, name: str, kind: str) -> Any:
        workload: Any
        readers = {
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "Deployment": self.apps.read_namespaced_deployment,
        }
        if kind not in readers:
            raise LabError(
                f"Cannot follow a rollout of kind {kind}.", "Use Deployment or StatefulSet."
            )
        with self._explained(f"read {kind}/{name}", self.namespace):
            workload = readers[kind](name, self.namespace)
        workload.kind = kind
        return workload

    def wait_rollout(
        self,
        name: str,
        kind: str = "Deployment",
        timeout: float = 300.0,
        selector: str | None = None,
    ) -> dict[str, Any]:
        """Wait until the rollout is complete and as many of its pods are ready (and not
        terminating) as it wants; on timeout, the diagnostics of its pods.

        The pod count closes a race the status counts leave open: right after a pod is killed
        the controller may not have noticed yet, and its status still says "all available".
        `selector` defaults to the workload's own matchLabels. What waiting cannot fix (an image
        that cannot be pulled, the quota, Pod Security) fails at once (`blocker`).
        """
        pods = selector
        since = datetime.now(UTC)

        def done() -> dict[str, Any] | None:
            nonlocal pods
            workload = self._workload(name, kind)
            pods = pods or match_labels_selector(workload)
            counts = rollout_row(workload)
            if not rollout_complete(workload) or len(self.ready_pods(pods)) < counts["desired"]:
                if blocked := self.blocker(pods, since):
                    raise blocked
                return None
            return counts

        return poll(
            done,
            what=f"{kind} {name} rollout",
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: self.diagnose(pods or f"app={name}"),
        )

    def restart(self, name: str, kind: str = "Deployment") -> str:
        """Trigger a rolling update, like `kubectl rollout restart`; returns the stamp used."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                }
            }
        }
        if kind == "StatefulSet":
            self.apps.patch_namespaced_stateful_set(name, self.namespace, patch)
        else:
            self.apps.patch_namespaced_deployment(name, self.namespace, patch)
        return stamp

    def rollout_timeline(
        self, name: str, timeout: float = 300.0, interval: float = 1.0
    ) -> pd.DataFrame:
        """Sample replica counts until the rollout completes: one row per sample, `t` in s."""
        start = time.monotonic()
        rows = []
        while True:
            workload = self._workload(name, "Deployment")
            rows.append({"t": round(time.monotonic() - start, 2), **rollout_row(workload)})
            if rollout_complete(workload) and len(rows) > 1:
                return pd.DataFrame(rows)
            if time.monotonic() - start > timeout:
                raise LabError(
                    f"Deployment {name} did not finish its rollout in {timeout:g} s.",
                    f"Look at cluster.diagnose('app={name}').",
                )
            time.sleep(interval)
