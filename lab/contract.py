"""Names the lab shares with the backend, the manifests and the notebooks (one owner each).

The objects of the stack the lab's code names (manifests/ spells them; tests/manifests checks
them against the render), the Prometheus job scraping the backend (the Prometheus
configurations under manifests/ spell it too), the selector of the requests that count for the
SLIs (business routes, not the chaos controls) and the notebooks' Jupyter kernel.
"""

from __future__ import annotations

BACKEND = "backend"  # the Deployment, its Service, container and NetworkPolicy, its pods' `app`
BACKEND_HPA = "backend-hpa"  # the HorizontalPodAutoscaler that owns the backend's replica count
POSTGRES = "postgres"  # the StatefulSet, its pods' `app`
PROMETHEUS = "prometheus"  # the Deployment, its pods' `app`; its ServiceAccount, Role, RoleBinding
GRAFANA = "grafana"  # the Deployment, its pods' `app`
CHAOS_SECRET = "chaos-secret"  # noqa: S105 - the name of the Secret holding CHAOS_TOKEN
JOB = "ironclad-backend"
KERNEL = "python3"  # the notebooks' kernel (`lab.kernelspec` installs the lab's spec under it)


def sli_selector(job: str = JOB) -> str:
    """PromQL label matchers of the requests the SLOs and the golden signals count."""
    return f'job="{job}",route=~"/api/.*",route!~"/api/chaos.*"'


SLI_SELECTOR = sli_selector()
