"""workshop status against the recording fake API (conftest.py); record_summary against a
recording stand-in for lab.k8s.NamespaceClient (it only needs `namespace` and `apply`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from lab.identity import Identity
from lab.lessons import with_objects
from lab.workshop.api import ObjectState
from lab.workshop.capacity import Footprint
from lab.workshop.objects import Plan, all_objects
from lab.workshop.status import (
    SUMMARY_LABEL,
    LearnerStatus,
    Run,
    html_page,
    printable,
    record_run,
    record_summary,
    rows,
    status,
    summary_config_map,
    table,
)

SIZE = Footprint(1, 1, 1, 1, 1)
PLAN = Plan("ws", ("learner-01", "learner-02"), SIZE, SIZE, {"cpu": "1", "memory": "1Mi"}, "1d")
SUMMARY = {
    "target": "cluster",
    "duration_s": 1.0,
    "notebooks": [
        {"name": "03-postgres-statefulset", "status": "passed", "checks_passed": 4},
        {"name": "04-backend-deployment", "status": "failed", "checks_passed": 1},
        {"name": "05-scaling-and-resilience", "status": "not run", "checks_passed": 0},
    ],
}


@dataclass
class RecordingCluster:
    namespace: str
    applied: list[list[dict[str, Any]]] = field(default_factory=list)

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.applied.append(objects)


def test_record_summary_applies_one_config_map_per_notebook_that_ran() -> None:
    cluster = RecordingCluster("learner-01")
    assert record_summary(SUMMARY, cluster) == 2  # type: ignore[arg-type]
    (applied,) = cluster.applied
    assert [o["metadata"]["name"] for o in applied] == [
        "ironclad-run-03-postgres-statefulset",
        "ironclad-run-04-backend-deployment",
    ]
    assert all(o["metadata"]["namespace"] == "learner-01" for o in applied)
    assert all(o["metadata"]["labels"] == {SUMMARY_LABEL: "true"} for o in applied)
    assert json.loads(applied[0]["data"]["summary.json"]) == {
        **SUMMARY["notebooks"][0],  # type: ignore[index]
        "language": "en",  # the run's (a summary from before languages: English)
    }


def test_workshop_status_shows_the_language_each_learners_runs_were_in() -> None:
    cluster = RecordingCluster("learner-01")
    assert record_summary({**SUMMARY, "language": "es"}, cluster) == 2  # type: ignore[arg-type]
    recorded = [Run.parse(o["data"]["summary.json"]) for o in cluster.applied[0]]
    run = Run("03-postgres-statefulset", "passed", 4, "es")
    assert recorded == [run, Run("04-backend-deployment", "failed", 1, "es")]
    before = summary_config_map("learner-02", {"name": "01-namespace", "status": "passed"})
    assert Run.parse(before["data"]["summary.json"]) == Run("01-namespace", "passed", 0, "en")
    for language in ("tlh", ["es"], {"es": 1}, None):  # shown as unreadable records
        record = json.dumps({"name": "01-namespace", "status": "passed", "language": language})
        assert Run.parse(record) is None, language

    nothing = {row.id: [] for row in with_objects()}  # no lesson's objects there yet
    learners = [
        LearnerStatus("learner-01", nothing, [run]),
        LearnerStatus("learner-02", nothing, [run, Run("01-namespace", "passed", 2)]),
        LearnerStatus("learner-03", nothing),
    ]
    board = rows(learners)
    assert board[0][-2:] == ["language", "runs (checks passed)"]
    assert [row[-2] for row in board[1:]] == ["es", "en, es", "-"]


LEARNER = Identity("ctx", "learner-01", "/learner/kubeconfig", "registry.example/b:1", True)


def test_record_run_connects_only_on_a_shared_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    connected: list[Identity] = []

    def connect(identity: Identity) -> Any:
        connected.append(identity)
        return RecordingCluster(identity.namespace)

    monkeypatch.setattr("lab.workshop.status.NamespaceClient.connect", connect)
    own = Identity("kind-ironclad", "ironclad-demo", "/home/k", "ironclad-backend:lab", False)
    record_run({**SUMMARY, "target": "kind"}, own)
    assert connected == []
    record_run(SUMMARY, LEARNER)
    assert connected == [LEARNER]  # the lab's recorded identity, as it is


def test_record_run_on_the_cluster_target_warns_instead_of_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record_run(SUMMARY, LEARNER)  # its kubeconfig does not exist
    assert "could not record the run for `workshop status` in learner-01" in caplog.text


def test_status_shows_lessons_and_recorded_runs_of_learner_namespaces_only(
    fake_api: Any,
) -> None:
    fake_api.apply(all_objects(PLAN))
    fake_api.states = {
        ("learner-01", "Secret", "postgres-secret"): ObjectState(True),
        ("learner-01", "ConfigMap", "backend-config"): ObjectState(True),
        ("learner-01", "StatefulSet", "postgres"): ObjectState(True, 1, 1),
        ("learner-01", "Deployment", "backend"): ObjectState(True, 1, 3),
        ("learner-01", "HorizontalPodAutoscaler", "backend-hpa"): ObjectState(True),  # 04's too
    }
    fake_api.config_map_data = {
        "learner-01": [
            summary_config_map("learner-01", nb)["data"]
            for nb in SUMMARY["notebooks"][:2]  # type: ignore[index]
        ]
    }
    learners = status(fake_api, "ws")
    assert [s.namespace for s in learners] == ["learner-01", "learner-02"]  # no peers
    first, second = learners
    assert first.lesson_mark("02") == "✓"
    assert first.lesson_mark("03") == "✓"
    assert first.lesson_mark("04") == "… Deployment/backend 1/3"
    assert first.lesson_mark("05") == "-"
    assert first.runs() == "03✓(4) 04✗"
    assert second.runs() == "no run recorded"
    text = table(learners)
    assert text.splitlines()[0].split()[:3] == ["learner", "lesson", "02"]
    assert "03✓(4) 04✗" in text.splitlines()[1]
    page = html_page(learners, "<ws>")
    assert "&lt;ws&gt;" in page
    assert page.count("<tr>") == 3
    assert ("config_maps", "learner-01", f"{SUMMARY_LABEL}=true") in fake_api.calls


def test_status_without_learners_says_to_provision(fake_api: Any) -> None:
    assert "provision first" in table(status(fake_api, "ws"))


def test_status_reads_only_the_namespaces_of_the_workshops_id(fake_api: Any) -> None:
    fake_api.apply(all_objects(PLAN))
    assert [s.namespace for s in status(fake_api, "ws", "1d")] == ["learner-01", "learner-02"]
    assert status(fake_api, "ws", "2e") == []


ESCAPE = "\x1b]0;pwned\x07\x1b[2J\r"  # retitle the terminal, clear it, return the cursor
HOSTILE = [
    "{not json",
    "[1, 2, 3]",
    json.dumps({"name": "03-postgres-statefulset"}),  # no status
    json.dumps({"name": "03-x", "status": "passed", "checks_passed": "4"}),
    json.dumps({"name": "03-x", "status": "passed", "checks_passed": True}),
    json.dumps({"name": f"03-{ESCAPE}", "status": "passed", "checks_passed": 1}),
    json.dumps({"name": "04-backend-deployment", "status": f"passed{ESCAPE}"}),
    "[" * 100_000,  # deeper than the JSON parser's recursion limit
]


def test_hostile_records_are_unreadable_for_that_learner_only(fake_api: Any) -> None:
    fake_api.apply(all_objects(PLAN))
    good = summary_config_map("learner-02", SUMMARY["notebooks"][0])["data"]  # type: ignore[index]
    fake_api.config_map_data = {
        "learner-01": [{"summary.json": text} for text in HOSTILE] + [{"other": "x"}, good],
        "learner-02": [good],
    }
    first, second = status(fake_api, "ws")
    assert first.runs() == "03✓(4) unreadable record x9"
    assert second.runs() == "03✓(4)"
    board = table([first, second]) + html_page([first, second], "ws")
    assert "\x1b" not in board
    assert "\x07" not in board
    assert "\r" not in board


def test_control_characters_are_escaped_in_the_terminal_and_the_page() -> None:
    assert printable(f"ns{ESCAPE}") == "ns\\x1b]0;pwned\\x07\\x1b[2J\\r"
    assert printable("a\u202eb\u200bc ✓ é") == "a\\u202eb\\u200bc ✓ é"  # bidi, zero width
    lessons = {row.id: [] for row in with_objects()}
    learner = LearnerStatus(f"learner{ESCAPE}", lessons)  # type: ignore[arg-type]
    text, page = table([learner]), html_page([learner], f"<b>{ESCAPE}")
    for out in (text, page):
        assert "\x1b" not in out
        assert "\x07" not in out
        assert "learner\\x1b]0;pwned" in out
    assert "&lt;b&gt;\\x1b" in page
