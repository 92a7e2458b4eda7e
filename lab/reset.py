"""Reset to lesson N: what each lesson needs on entry, what breaks it now, and the fix.

Every lesson 01-07 starts from the same base state, the one `lab up` leaves:

- chaos off on every replica: disabled, latency 0, error ratio 0, no memory held;
- every backend replica running and ready: on local all of them (`LAB_REPLICAS`), on
  kind/cluster at least the HPA's `minReplicas`, with the HPA in charge of the count (the
  Deployment has no `spec.replicas`; the overlay is re-applied with server-side apply);
- the database: no lesson expects rows (03 writes into a throwaway server of its own, 03-07
  create items through the API and only read back what they wrote), so "seeded" means the
  schema the backend creates at start-up answers (`GET /api/items`).

Lessons differ in the objects they create at run time (`lab.lessons.LESSONS`, `creates`),
which a reset to N removes for the lessons >= N: probe pods (`lab-probe` label: 00's and 05's
NetworkPolicy probes, left behind when a cell is interrupted) and exercise objects (label
`lab.lessons.EXERCISE_LABEL`, the exercises' contract).
What a reset cannot undo: fields a learner added that the overlay never sets (`kubectl edit`
adding an annotation stays; fields the overlay sets are taken back by the forced apply).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.chaos import BackendChaos, chaos_left, leftovers
from lab.contract import BACKEND, BACKEND_HPA, POSTGRES
from lab.errors import LabError
from lab.i18n import _, ngettext
from lab.lessons import EXERCISES, PARTS, part_of, removed_by
from lab.net import http_ok, http_status
from lab.targets import Endpoints
from lab.waits import poll

if TYPE_CHECKING:
    from lab.k8s import NamespaceClient

# Kinds an exercise may create (what a reset looks for under EXERCISE_LABEL), and lesson 03's
# too-early Deployment (lab.wrong_order), left behind if its cell's kernel dies.
EXERCISE_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Pod"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("apps/v1", "Deployment"),
)


def fix_backends(endpoints: Endpoints, timeout: float) -> list[str]:
    """Wait for every replica to be ready, turn chaos off and free hogged memory on each,
    and check the schema answers; one line per thing that was wrong."""
    was = leftovers(endpoints.backends, endpoints.chaos_token)
    poll(
        lambda: all(http_ok(f"{u}/health/ready") for u in endpoints.backends),
        what=ngettext(
            "{count} backend replica ready",
            "{count} backend replicas ready",
            len(endpoints.backends),
        ).format(count=len(endpoints.backends)),
        timeout=timeout,
        diagnose=lambda: "\n".join(leftovers(endpoints.backends, endpoints.chaos_token)),
    )
    BackendChaos(endpoints.backends, endpoints.chaos_token).reset()
    still = chaos_left(endpoints.backends, endpoints.chaos_token)
    if still:
        raise LabError(
            _("Chaos is still on after the reset: {left}.").format(left="; ".join(still)),
            _("Run the reset again; if it persists, restart the lab (ironclad-lab down, up)."),
        )
    status = http_status(f"{endpoints.backend}/api/items?limit=1")
    if status != 200:
        raise LabError(
            _("GET {backend}/api/items answered {status} after the reset.").format(
                backend=endpoints.backend, status=status
            ),
            _("The database does not answer: read the backend logs, or restart the lab."),
        )
    return [_("fixed: {problem}").format(problem=line) for line in was]


def reset_cluster(
    cluster: NamespaceClient,
    objects: list[dict[str, Any]],
    lesson: int,
    timeout: float,
    parts: tuple[str, ...] = PARTS,
) -> list[str]:
    """kind/cluster: re-apply the objects of the built `parts` (server-side apply, forced:
    fields a learner changed that the overlay sets are taken back; the caller prepared them:
    credentials and the live image stamp kept),
    delete the run-time objects of lessons >= `lesson`, and wait for postgres and for the
    backend at the HPA's floor (those built). Chaos is reset through the forwarded replicas by
    `fix_backends`. One line per action."""
    objects = [o for o in objects if part_of(o) in parts]
    applied = len(cluster.apply(objects, timeout))
    done = [
        ngettext(
            "applied {count} object (server-side apply)",
            "applied {count} objects (server-side apply)",
            applied,
        ).format(count=applied)
    ]
    for selector in removed_by(lesson):
        kinds = EXERCISE_KINDS if selector == EXERCISES else (("v1", "Pod"),)
        for api_version, kind in kinds:
            for name in cluster.delete_labelled(api_version, kind, selector):
                done.append(
                    _("deleted {kind}/{name} ({selector})").format(
                        kind=kind, name=name, selector=selector
                    )
                )
    if "postgres" in parts:
        cluster.wait_rollout(POSTGRES, "StatefulSet", timeout)
        done.append(_("postgres ready"))
    if "backend" in parts:
        floor = cluster.hpa(BACKEND_HPA).min_replicas
        backend = cluster.wait_rollout(BACKEND, "Deployment", timeout)
        if backend.ready < floor:
            raise LabError(
                _(
                    "Deployment {deployment} has {ready} ready pods, below the HPA's minReplicas "
                    "{floor}."
                ).format(deployment=BACKEND, ready=backend.ready, floor=floor),
                _("Look at env.k8s.hpa('{hpa}') and env.k8s.diagnose('app={deployment}').").format(
                    hpa=BACKEND_HPA, deployment=BACKEND
                ),
            )
        done.append(
            _("backend: {ready} ready (HPA floor {floor})").format(ready=backend.ready, floor=floor)
        )
    return done
