"""`workshop status`: every learner's progress, and the run summaries the runner records.

On the `cluster` target the runner records each notebook's summary.json entry in the learner's
namespace as a ConfigMap (`record_summary`: one per notebook, so a later run of some notebooks
never erases the others). Status reads, per learner namespace (by the workshop's label), which
lessons' objects exist and are healthy (`LESSON_OBJECTS`; workloads: ready replicas reach the
desired count) and those summaries, as a table for the terminal and an HTML page.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.k8s import Cluster
from lab.workshop.api import InstructorApi, ObjectState
from lab.workshop.objects import selector

log = logging.getLogger(__name__)

SUMMARY_LABEL = "ironclad.lab/run-summary"
SUMMARY_KEY = "summary.json"
# The objects each lesson leaves in the learner's namespace (tests/unit/lab/workshop checks that
# each is in the rendered stack).
LESSON_OBJECTS: dict[str, tuple[tuple[str, str], ...]] = {
    "02": (("Secret", "postgres-secret"), ("ConfigMap", "backend-config")),
    "03": (("StatefulSet", "postgres"),),
    "04": (("Deployment", "backend"),),
    "05": (
        ("HorizontalPodAutoscaler", "backend-hpa"),
        ("PodDisruptionBudget", "backend-pdb"),
        ("NetworkPolicy", "default-deny-all"),
    ),
    "06": (("Deployment", "prometheus"),),
}


def summary_config_map(namespace: str, notebook: Mapping[str, Any]) -> dict[str, Any]:
    """The ConfigMap recording one notebook's summary.json entry."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"ironclad-run-{notebook['name']}",
            "namespace": namespace,
            "labels": {SUMMARY_LABEL: "true"},
        },
        "data": {SUMMARY_KEY: json.dumps(dict(notebook), sort_keys=True)},
    }


def record_summary(summary: Mapping[str, Any], cluster: Cluster) -> int:
    """Record the notebooks of a run's summary.json that ran (server-side apply in the learner's
    namespace: the learner's Role allows it); the number recorded."""
    ran = [nb for nb in summary["notebooks"] if nb["status"] != "not run"]
    if ran:
        cluster.apply([summary_config_map(cluster.namespace, nb) for nb in ran])
    return len(ran)


def record_run(summary: Mapping[str, Any], namespace: str, context: str | None = None) -> None:
    """The runner's hook: on the cluster target, record the summary for `workshop status`; a
    failure to record is a warning, never a failed run."""
    if summary["target"] != "cluster":
        return
    try:
        count = record_summary(summary, Cluster.connect(namespace, context=context, shared=True))
    except (LabError, ApiException) as exc:
        log.warning("could not record the run for `workshop status` in %s: %s", namespace, exc)
    else:
        log.info("recorded %d notebook results in %s for `workshop status`", count, namespace)


@dataclass(frozen=True)
class LearnerStatus:
    """One learner: each lesson's objects, and the notebooks their runs recorded."""

    namespace: str
    lessons: dict[str, list[tuple[str, ObjectState]]]
    notebooks: list[dict[str, Any]] = field(default_factory=list)

    def lesson_mark(self, lesson: str) -> str:
        """✓ all there and ready, … some there or not ready (ready/desired), - none there."""
        states = [state for _, state in self.lessons[lesson]]
        if all(s.healthy for s in states):
            return "✓"
        if not any(s.exists for s in states):
            return "-"
        waiting = [
            f"{name} {s.ready}/{s.desired}"
            for name, s in self.lessons[lesson]
            if s.exists and not s.healthy
        ]
        missing = [name for name, s in self.lessons[lesson] if not s.exists]
        return "… " + ", ".join(waiting + [f"{m} missing" for m in missing])

    def runs(self) -> str:
        """The recorded notebooks: passed ones with their checks, failed ones marked."""
        marks = []
        for nb in sorted(self.notebooks, key=lambda n: str(n["name"])):
            number = str(nb["name"]).split("-", 1)[0]
            if nb["status"] == "passed":
                marks.append(f"{number}✓({nb.get('checks_passed', 0)})")
            else:
                marks.append(f"{number}✗")
        return " ".join(marks) or "no run recorded"


def status(api: InstructorApi, workshop: str) -> list[LearnerStatus]:
    """Every learner namespace of `workshop` (peers left out), sorted by name."""
    found = api.namespaces(selector(workshop, "learner"))
    learners = []
    for namespace in sorted(n.name for n in found):
        lessons = {
            lesson: [
                (f"{kind}/{name}", api.object_state(namespace, kind, name))
                for kind, name in objects
            ]
            for lesson, objects in LESSON_OBJECTS.items()
        }
        notebooks = [
            json.loads(data[SUMMARY_KEY])
            for data in api.config_maps(namespace, f"{SUMMARY_LABEL}=true")
            if SUMMARY_KEY in data
        ]
        learners.append(LearnerStatus(namespace, lessons, notebooks))
    return learners


def rows(learners: Sequence[LearnerStatus]) -> list[list[str]]:
    """The board: a header, then one row per learner."""
    header = ["learner", *(f"lesson {n}" for n in LESSON_OBJECTS), "runs (checks passed)"]
    body = [[s.namespace, *(s.lesson_mark(n) for n in LESSON_OBJECTS), s.runs()] for s in learners]
    return [header, *body]


def table(learners: Sequence[LearnerStatus]) -> str:
    """The board as fixed-width text for the terminal."""
    if not learners:
        return "No learner namespaces for this workshop (provision first)."
    board = rows(learners)
    widths = [max(len(row[i]) for row in board) for i in range(len(board[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in board
    )


def html_page(learners: Sequence[LearnerStatus], workshop: str) -> str:
    """The board as one self-contained HTML page."""
    board = rows(learners)
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in board[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in board[1:]
    )
    title = html.escape(f"Ironclad Lab workshop {workshop}: progress")
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head>"
        f"<body><h1>{title}</h1><p>✓ objects there and ready · … partly · - not yet; "
        "runs: notebook number ✓(checks passed) or ✗ failed.</p>"
        f"<table><tr>{head}</tr>{body}</table></body></html>\n"
    )
