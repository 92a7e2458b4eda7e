"""Names the lab shares with the backend and the manifests (one owner each).

The Prometheus job scraping the backend (the Prometheus configurations under manifests/
spell it too) and the selector of the requests that count for the SLIs: business routes,
not the chaos controls.
"""

from __future__ import annotations

JOB = "ironclad-backend"


def sli_selector(job: str = JOB) -> str:
    """PromQL label matchers of the requests the SLOs and the golden signals count."""
    return f'job="{job}",route=~"/api/.*",route!~"/api/chaos.*"'


SLI_SELECTOR = sli_selector()
