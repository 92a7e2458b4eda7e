"""The footprint arithmetic on a small stack written out here, and on the real render."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from lab.manifests import render
from lab.settings import get_settings
from lab.workshop.capacity import (
    Footprint,
    capacity_lines,
    largest_container,
    learner_footprint,
    learners_per_node,
    loadgen_footprint,
    pod_footprint,
    probe_footprint,
    steady_footprint,
)
from lab.workshop.provision import learner_stack


def container(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "name": "c",
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu_limit, "memory": memory_limit},
        },
    }


STACK: list[dict[str, Any]] = [
    {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {"containers": [container("100m", "128Mi", "500m", "256Mi")]}},
        },
    },
    {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 3,
            "maxReplicas": 10,
        },
    },
    {
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": {
            "replicas": 1,
            "template": {"spec": {"containers": [container("0.1", "256Mi", "1", "0.5Gi")]}},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "1Gi"}}}}],
        },
    },
    {  # default strategy: maxSurge 25 % of 1 replica rounds up to 1
        "kind": "Deployment",
        "metadata": {"name": "prom", "namespace": "ns"},
        "spec": {
            "replicas": 1,
            "template": {"spec": {"containers": [container("200m", "256Mi", "1", "1Gi")]}},
        },
    },
]


def test_peak_footprint_is_hpa_max_plus_surge_plus_probe_pods_and_the_load_generator() -> None:
    probes = probe_footprint()
    assert probes == Footprint(20, 64, 200, 128, 2)  # two pods of lab.k8s.probe_pod's size
    assert loadgen_footprint() == Footprint(50, 32, 500, 128, 1)  # lab.loadgen's one pod
    peak = learner_footprint(STACK)
    # web: (10 + 1) x 100m/128Mi; db: 1 x 100m/256Mi; prom: (1 + 1) x 200m/256Mi; probes;
    # the load generator.
    assert peak == Footprint(
        requests_cpu_m=11 * 100 + 100 + 2 * 200 + 20 + 50,
        requests_memory_mi=11 * 128 + 256 + 2 * 256 + 64 + 32,
        limits_cpu_m=11 * 500 + 1000 + 2 * 1000 + 200 + 500,
        limits_memory_mi=11 * 256 + 512 + 2 * 1024 + 128 + 128,
        pods=11 + 1 + 2 + 2 + 1,
        pvcs=1,
        storage_gi=1,
    )


def test_at_rest_footprint_is_hpa_min_without_surge_or_probes() -> None:
    assert steady_footprint(STACK) == Footprint(
        3 * 100 + 100 + 200, 3 * 128 + 256 + 256, 3 * 500 + 1000 + 1000, 3 * 256 + 512 + 1024, 5
    )


def test_init_containers_count_when_larger_than_the_containers() -> None:
    spec = {
        "containers": [container("100m", "64Mi", "100m", "64Mi")] * 2,
        "initContainers": [container("500m", "32Mi", "500m", "32Mi")],
    }
    assert pod_footprint(spec) == Footprint(500, 128, 500, 128, 1)


def test_learners_per_node_is_bound_by_the_scarcer_resource() -> None:
    assert learners_per_node(Footprint(700, 1024, 0, 0, 6), cpu=4, memory_gib=16) == 5
    assert learners_per_node(Footprint(100, 4096, 0, 0, 1), cpu=4, memory_gib=16) == 4
    lines = capacity_lines(learner_footprint(STACK), steady_footprint(STACK))
    assert (
        "a node with 4 CPU / 16 GiB allocatable holds 2 learners at their maximum, 6 at rest"
        in lines
    )


def test_largest_container_is_the_limit_range_max() -> None:
    assert largest_container(STACK) == {"cpu": "1000m", "memory": "1024Mi"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_the_real_stack_fits_its_quota_at_rest() -> None:
    stack = learner_stack(get_settings())
    peak, rest = learner_footprint(stack), steady_footprint(stack)
    assert rest.requests_cpu_m < peak.requests_cpu_m
    assert rest.requests_memory_mi < peak.requests_memory_mi
    assert rest.pods + probe_footprint().pods < peak.pods


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_the_quota_holds_lesson_08s_backup_add_on() -> None:
    """Its claim and one Job pod (the CronJob forbids concurrent runs) on top of the stack."""
    settings = get_settings()
    stack = render("cluster", settings)
    addon = render("backup", settings)
    without, with_addon = learner_footprint(stack), learner_footprint([*stack, *addon])
    cronjob = next(o for o in addon if o["kind"] == "CronJob")
    job_pod = pod_footprint(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    assert with_addon == without + job_pod + Footprint(0, 0, 0, 0, 0, pvcs=1, storage_gi=1)
    assert learner_footprint(learner_stack(settings)) == with_addon
