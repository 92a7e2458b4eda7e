"""One real local lab (PostgreSQL, 3 backend replicas, Prometheus with the lab-scale rules) for
the lesson 06/07 tests: the exercises' verifiers, lab.dashboard, lab.backend_logs and the
runbooks run against it exactly as the notebooks do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import load, slo
from lab.session import Lab
from lab.settings import Settings
from lab.targets.local import LocalTarget

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="session")
def lab_env() -> Iterator[Lab]:
    """The local target up, with a few seconds of /api traffic already scraped."""
    settings = Settings(repo_root=REPO, ready_timeout=60)
    target = LocalTarget(settings, replicas=slo.MIN_BACKENDS)
    try:
        endpoints = target.up()
        env = Lab(endpoints, settings.namespace, os.getpid(), "test", settings)
        load.run(endpoints.backends, rate=30, duration=3, progress=False)
        env.prom.wait_until(
            'sum(http_requests_total{job="ironclad-backend",route="/api/items"})',
            lambda f: not f.empty and f["value"].iloc[0] >= 60,
            timeout=30,
            progress=False,
        )
        yield env
    finally:
        target.down()
