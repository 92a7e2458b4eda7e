"""Capability probes against a recording fake of the two lab.k8s.NamespaceClient calls they make
(`probe`, `hpa`): what the fake answers is what a cluster that enforces (or ignores) the
policies, or has (or lacks) metrics-server, would answer. The real probes run on kind in
tests/integration/lab/test_capabilities_kind.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from lab.capabilities import (
    ALLOWED_LABELS,
    SKIP_MIMETYPE,
    STRANGER_LABELS,
    metrics_server_serving,
    network_policy_enforced,
)
from lab.errors import LabError
from lab.k8s import HpaStatus, ProbeResult

URL = "tcp://postgres.learner-01.svc.cluster.local:5432"


@dataclass
class RecordingFakeCluster:
    """Answers probes by label set; `hpa()` returns the next reading (None: no metrics yet)."""

    reaches: dict[str, bool] = field(default_factory=dict)  # "app" label -> connected?
    cpu_readings: list[int | None] = field(default_factory=list)
    namespace: str = "learner-01"
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def probe(
        self,
        url: str,
        labels: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        image: str | None = None,
    ) -> ProbeResult:
        labels = dict(labels or {})
        self.calls.append(("probe", url, labels))
        ok = self.reaches[labels["app"]]
        return ProbeResult(url, labels, ok, "connected" if ok else "no connection: timed out")

    def hpa(self, name: str) -> HpaStatus:
        self.calls.append(("hpa", name))
        cpu = self.cpu_readings.pop(0) if len(self.cpu_readings) > 1 else self.cpu_readings[0]
        return HpaStatus(name, 3, 10, 3, 3, cpu, 70)


def test_enforcing_cluster_refuses_the_stranger_after_the_allowed_pod_connected() -> None:
    fake = RecordingFakeCluster({"backend": True, "lab-capability-probe": False})
    result = network_policy_enforced(fake)  # type: ignore[arg-type]
    assert result.available
    assert "refused" in result.reason
    assert fake.calls == [("probe", URL, ALLOWED_LABELS), ("probe", URL, STRANGER_LABELS)]


def test_a_cluster_that_lets_the_stranger_through_says_so_and_why() -> None:
    fake = RecordingFakeCluster({"backend": True, "lab-capability-probe": True})
    result = network_policy_enforced(fake)  # type: ignore[arg-type]
    assert not result.available
    assert result.reason.startswith("this cluster does not enforce NetworkPolicy")
    assert "kindnet" in result.reason
    assert "WSL2" in result.reason


def test_nothing_is_concluded_when_even_the_allowed_pod_fails() -> None:
    fake = RecordingFakeCluster({"backend": False, "lab-capability-probe": False})
    with pytest.raises(LabError, match="Cannot tell whether NetworkPolicy is enforced"):
        network_policy_enforced(fake)  # type: ignore[arg-type]
    assert len(fake.calls) == 1  # the stranger is not even tried


def test_metrics_server_serving_once_the_hpa_reads_cpu() -> None:
    fake = RecordingFakeCluster(cpu_readings=[None, 12])
    result = metrics_server_serving(fake, timeout=10)  # type: ignore[arg-type]
    assert result.available
    assert result.reason == "backend-hpa reads CPU 12% (target 70%)"
    assert fake.calls == [("hpa", "backend-hpa")] * 2


def test_metrics_server_missing_is_a_capability_not_a_crash() -> None:
    fake = RecordingFakeCluster(cpu_readings=[None])
    result = metrics_server_serving(fake, timeout=0.5)  # type: ignore[arg-type]
    assert not result.available
    assert "metrics-server is not serving" in result.reason


def test_skip_publishes_what_was_skipped_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[dict[str, object]] = []
    monkeypatch.setattr("lab.capabilities.publish", published.append)
    fake = RecordingFakeCluster({"backend": True, "lab-capability-probe": True})
    result = network_policy_enforced(fake)  # type: ignore[arg-type]
    result.skip("the enforcement checks of lesson 05")
    assert published == [
        {
            "text/plain": f"⏭ skipped the enforcement checks of lesson 05: {result.reason}",
            SKIP_MIMETYPE: {
                "capability": "networkpolicy",
                "skipped": "the enforcement checks of lesson 05",
                "reason": result.reason,
            },
        }
    ]
