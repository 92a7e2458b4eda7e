"""`workshop status`: every learner's progress, and the run summaries the runner records.

On the `cluster` target the runner records each notebook's summary.json entry in the learner's
namespace as a ConfigMap (`record_summary`: one per notebook, so a later run of some notebooks
never erases the others). Status reads, per learner namespace (by the workshop's label), which
lessons' objects exist and are healthy (`lab.lessons.LESSONS`; workloads: ready replicas reach the
desired count) and those summaries (with the language each notebook ran in, `run --lang`), as a
table for the terminal and an HTML page.

The summaries are the learner's to write (their Role may apply ConfigMaps), so status trusts
none of them: a record that is not a JSON object of the expected shape is shown as "unreadable
record" for that learner only, and every cell is `printable()` (control and format characters,
e.g. terminal escape sequences or bidi overrides, escaped) before it reaches a terminal or page.
The board's headings and words are in the instructor's language (lab.i18n); `-o json|yaml`
keeps its keys and the recorded statuses as they are.
"""

from __future__ import annotations

import html
import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lab.errors import LabError
from lab.i18n import LANGUAGES, N_, SOURCE_LANGUAGE, _, current, ngettext
from lab.identity import Identity
from lab.k8s import NamespaceClient
from lab.lessons import with_objects
from lab.workshop.api import InstructorApi, ObjectState
from lab.workshop.objects import selector

log = logging.getLogger(__name__)

SUMMARY_LABEL = "ironclad.lab/run-summary"
SUMMARY_KEY = "summary.json"
UNREADABLE = N_("unreadable record")
NO_RUN = N_("no run recorded")
# The board's column headings (the lesson columns: LESSON_COLUMN with the lesson's number).
LEARNER_COLUMN = N_("learner")
LESSON_COLUMN = N_("lesson {number}")
RUNS_COLUMN = N_("runs (checks passed)")
LANGUAGE_COLUMN = N_("language")  # the languages the learner's runs were in (`run --lang`)
NOTEBOOK_NAME = re.compile(r"\d{2}-[a-z0-9-]{1,60}")
NOTEBOOK_STATUS = re.compile(r"[a-z][a-z ]{0,19}")  # "passed", "failed", "not run", ...


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


def record_summary(summary: Mapping[str, Any], cluster: NamespaceClient) -> int:
    """Record the notebooks of a run's summary.json that ran, each with the run's language
    (server-side apply in the learner's namespace: the learner's Role allows it); the number
    recorded."""
    language = summary.get("language", SOURCE_LANGUAGE)
    ran = [{**nb, "language": language} for nb in summary["notebooks"] if nb["status"] != "not run"]
    if ran:
        cluster.apply([summary_config_map(cluster.namespace, nb) for nb in ran])
    return len(ran)


def record_run(summary: Mapping[str, Any], identity: Identity) -> None:
    """The runner's hook (`ironclad-lab run` passes it): on a shared cluster, record the summary
    for `workshop status` in the lab's recorded namespace, with its recorded context; a failure
    to record is a warning, never a failed run."""
    if not identity.shared:  # kind: the learner's own cluster, no instructor reads it
        return
    namespace = identity.namespace
    try:
        count = record_summary(summary, NamespaceClient.connect(identity))
    except LabError as exc:  # lab.k8s explains every API failure as a LabError
        log.warning(
            _("could not record the run for `workshop status` in {namespace}: {error}").format(
                namespace=namespace, error=exc
            )
        )
    else:
        log.info(
            ngettext(
                "recorded {count} notebook result in {namespace} for `workshop status`",
                "recorded {count} notebook results in {namespace} for `workshop status`",
                count,
            ).format(count=count, namespace=namespace)
        )


def printable(text: str) -> str:
    """`text` with every control or format character (ESC, BEL, CR, bidi overrides, zero-width
    joiners, ...) written as an escape, so what a learner wrote cannot drive a terminal."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp")
        else ch
        for ch in text
    )


@dataclass(frozen=True)
class Run:
    """One notebook's recorded result, checked for the shape the runner writes."""

    name: str
    status: str
    checks_passed: int
    language: str = SOURCE_LANGUAGE  # the notebook's (a record from before languages: English)

    @classmethod
    def parse(cls, text: str) -> Run | None:
        """The record in `text`, or None if it is not what `summary_config_map` writes."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        name, state = data.get("name"), data.get("status")
        checks = data.get("checks_passed", 0)
        language = data.get("language", SOURCE_LANGUAGE)
        if (
            not isinstance(name, str)
            or not NOTEBOOK_NAME.fullmatch(name)
            or not isinstance(state, str)
            or not NOTEBOOK_STATUS.fullmatch(state)
            or type(checks) is not int
            or checks < 0
            or not isinstance(language, str)
            or language not in LANGUAGES
        ):
            return None
        return cls(name, state, checks, language)

    def mark(self) -> str:
        number = self.name.split("-", 1)[0]
        return f"{number}✓({self.checks_passed})" if self.status == "passed" else f"{number}✗"


@dataclass(frozen=True)
class LearnerStatus:
    """One learner: each lesson's objects, the notebooks their runs recorded, and how many of
    their records could not be read."""

    namespace: str
    lessons: dict[str, list[tuple[str, ObjectState]]]
    notebooks: list[Run] = field(default_factory=list)
    unreadable: int = 0

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
        missing = [
            _("{object} missing").format(object=name)
            for name, s in self.lessons[lesson]
            if not s.exists
        ]
        return "… " + ", ".join(waiting + missing)

    def to_dict(self) -> dict[str, Any]:
        """What `workshop status -o json|yaml` prints for this learner."""
        return {
            "namespace": self.namespace,
            "lessons": {
                lesson: [
                    {"object": name, **asdict(state), "healthy": state.healthy}
                    for name, state in objects
                ]
                for lesson, objects in self.lessons.items()
            },
            "notebooks": [asdict(run) for run in self.notebooks],
            "unreadable": self.unreadable,
        }

    def runs(self) -> str:
        """The recorded notebooks (passed ones with their checks, failed ones marked), then
        "unreadable record" if any record was not one."""
        marks = [
            nb.mark()
            for nb in sorted(self.notebooks, key=lambda n: n.name)
            if nb.status != "not run"
        ]
        if self.unreadable == 1:
            marks.append(_(UNREADABLE))
        elif self.unreadable:
            marks.append(_("unreadable record x{count}").format(count=self.unreadable))
        return " ".join(marks) or _(NO_RUN)

    def languages(self) -> str:
        """The languages the recorded notebooks ran in (`run --lang`), "-" before any run."""
        return ", ".join(sorted({nb.language for nb in self.notebooks})) or "-"


def read_runs(records: Sequence[Mapping[str, Any]]) -> tuple[list[Run], int]:
    """The runs in a learner's recorded ConfigMaps' data, and how many were unreadable."""
    runs, unreadable = [], 0
    for data in records:
        text = data.get(SUMMARY_KEY) if isinstance(data, Mapping) else None
        run = Run.parse(text) if isinstance(text, str) else None
        if run is None:
            unreadable += 1
        else:
            runs.append(run)
    return runs, unreadable


def status(api: InstructorApi, workshop: str, uid: str | None = None) -> list[LearnerStatus]:
    """Every learner namespace of `workshop` (with id `uid` if given; peers left out), sorted
    by name."""
    found = api.namespaces(selector(workshop, uid, "learner"))
    learners = []
    for namespace in sorted(n.name for n in found):
        lessons = {
            lesson: [
                (f"{kind}/{name}", api.object_state(namespace, kind, name))
                for kind, name in objects
            ]
            for lesson, objects in ((row.id, row.objects) for row in with_objects())
        }
        runs, unreadable = read_runs(api.config_maps(namespace, f"{SUMMARY_LABEL}=true"))
        learners.append(LearnerStatus(namespace, lessons, runs, unreadable))
    return learners


def rows(learners: Sequence[LearnerStatus]) -> list[list[str]]:
    """The board: a header, then one row per learner."""
    columns = [row.id for row in with_objects()]
    lesson = _(LESSON_COLUMN)
    header = [
        _(LEARNER_COLUMN),
        *(lesson.format(number=n) for n in columns),
        _(LANGUAGE_COLUMN),
        _(RUNS_COLUMN),
    ]
    body = [
        [s.namespace, *(s.lesson_mark(n) for n in columns), s.languages(), s.runs()]
        for s in learners
    ]
    return [[printable(cell) for cell in row] for row in [header, *body]]


def table(learners: Sequence[LearnerStatus]) -> str:
    """The board as fixed-width text for the terminal."""
    if not learners:
        return _("No learner namespaces for this workshop (provision first).")
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
    title = html.escape(
        printable(_("Ironclad Lab workshop {workshop}: progress").format(workshop=workshop))
    )
    legend = html.escape(
        _(
            "✓ objects there and ready · … partly · - not yet; runs: notebook number ✓(checks "
            "passed) or ✗ failed."
        )
    )
    return (
        f'<!doctype html><html lang="{current()}"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head>"
        f"<body><h1>{title}</h1><p>{legend}</p>"
        f"<table><tr>{head}</tr>{body}</table></body></html>\n"
    )
