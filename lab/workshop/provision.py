"""`workshop provision` and `workshop teardown`: learner namespaces in, and out, by label.

Provision is idempotent (server-side apply of `lab.workshop.objects`; a run that failed half-way
is re-run), then writes one kubeconfig per learner, token from the TokenRequest API, mode 0600.
Teardown deletes only the namespaces carrying the workshop's label (their objects go with them)
and waits until they are gone; with nothing left it does nothing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lab.errors import LabError
from lab.manifests import Obj, render
from lab.settings import Settings
from lab.waits import poll
from lab.workshop.api import InstructorApi
from lab.workshop.capacity import largest_container, learner_footprint, steady_footprint
from lab.workshop.objects import (
    SERVICE_ACCOUNT,
    Plan,
    all_objects,
    kubeconfig,
    learner_names,
    selector,
)

log = logging.getLogger(__name__)

DURATION = re.compile(r"(\d+)([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_TOKEN_SECONDS = 600  # the TokenRequest API refuses shorter expiries


def parse_duration(text: str) -> int:
    """The seconds of a duration such as 8h, 90m or 1d12h (at least the API's 10 minutes)."""
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise LabError(
            f"--token-expiry {text!r} is not a duration.", "Write it like 8h, 90m or 1d12h."
        )
    seconds = sum(int(n) * SECONDS[u] for n, u in parts)
    if seconds < MIN_TOKEN_SECONDS:
        raise LabError(
            f"--token-expiry {text} is shorter than the 10 minutes the API server accepts.",
            "Give the workshop's length, e.g. 8h.",
        )
    return seconds


def learner_stack(settings: Settings) -> list[Obj]:
    """The objects a learner's `lab up --target cluster` applies into their namespace."""
    return render("cluster", settings)


def make_plan(settings: Settings, learners: int, prefix: str, workshop: str) -> Plan:
    """The learners' names and the quota sized from the rendered stack."""
    stack = learner_stack(settings)
    names = learner_names(learners, prefix)
    return Plan(
        workshop,
        names,
        learner_footprint(stack),
        steady_footprint(stack),
        largest_container(stack),
    )


@dataclass(frozen=True)
class Provisioned:
    """One learner's kubeconfig and when its token expires (the API may shorten it)."""

    learner: str
    kubeconfig: Path
    expires: datetime | None


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)  # an existing file keeps its old mode through O_CREAT


def provision(plan: Plan, api: InstructorApi, out: Path, token_seconds: int) -> list[Provisioned]:
    """Apply every learner's objects, then write `<out>/<learner>.kubeconfig` for each."""
    objects = all_objects(plan)
    log.info("applying %d objects for %d learners …", len(objects), len(plan.learners))
    api.apply(objects)
    endpoint = api.endpoint()
    done = []
    for learner in plan.learners:
        token = api.request_token(learner, SERVICE_ACCOUNT, token_seconds)
        path = out / f"{learner}.kubeconfig"
        text = kubeconfig(
            learner, endpoint.server, endpoint.ca_data, token.token, endpoint.insecure
        )
        write_private(path, text)
        done.append(Provisioned(learner, path, token.expires))
    return done


def teardown(api: InstructorApi, workshop: str, timeout: float = 300.0) -> list[str]:
    """Delete every namespace labelled for `workshop` and wait until they are gone; the names
    deleted (none when nothing was left: a second run is a no-op)."""
    everything = selector(workshop)
    names = sorted(n.name for n in api.namespaces(everything))
    for name in names:
        log.info("deleting namespace %s …", name)
        api.delete_namespace(name)
    if names:
        poll(
            lambda: not api.namespaces(everything),
            what=f"the namespaces of workshop {workshop} to be deleted",
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: ", ".join(n.name for n in api.namespaces(everything)),
        )
    return names


def summary_lines(done: Sequence[Provisioned]) -> list[str]:
    """What provision printed: one line per learner."""
    return [
        f"{p.learner}: {p.kubeconfig} (token expires {p.expires or 'when the API says'})"
        for p in done
    ]
