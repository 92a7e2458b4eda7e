"""lab.lessons: the one table of lessons agrees with the notebooks, the stack and its readers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.lessons import (
    EXERCISE_LABEL,
    LESSONS,
    PARTS,
    PROBE_PODS,
    Lesson,
    by_notebook,
    check_parts,
    expected_parts,
    lesson,
    objects_of,
    part_of,
    removed_by,
    with_objects,
    with_part,
)
from lab.manifests import find, render
from lab.settings import get_settings
from lab.workshop.provision import learner_stack

NOTEBOOKS_DIR = Path(__file__).resolve().parents[3] / "notebooks"
SOLUTIONS_DIR = NOTEBOOKS_DIR / "solutions"


def test_every_notebook_has_a_row_and_every_row_a_notebook() -> None:
    files = sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb"))
    assert files == [row.notebook for row in LESSONS], (
        "a notebook without a row (or a row without a notebook): add its Lesson to "
        "lab.lessons.LESSONS, in lesson order"
    )


@pytest.mark.parametrize("row", LESSONS, ids=lambda row: row.notebook)
def test_each_notebook_names_its_lesson_in_its_metadata(row: Lesson) -> None:
    path = NOTEBOOKS_DIR / f"{row.notebook}.ipynb"
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
    assert metadata.get("ironclad", {}).get("lesson") == row.number, (
        f"{path.name}: set metadata.ironclad.lesson to {row.number} (its row in lab.lessons)"
    )
    assert row.notebook.startswith(f"{row.id}-")


def test_lessons_are_in_order_and_each_part_is_built_once_in_the_designs_order() -> None:
    numbers = [row.number for row in LESSONS]
    assert numbers == sorted(set(numbers))
    assert PARTS == ("namespace", "config", "postgres", "backend", "resilience", "monitoring")


def test_rows_are_found_by_number_and_by_notebook_and_others_are_refused() -> None:
    assert lesson(5).notebook == "05-scaling-and-resilience"
    assert by_notebook("06-observability").number == 6
    with pytest.raises(LabError, match="There is no lesson 9") as info:
        lesson(9)
    assert "0, 1, 2" in info.value.next_step
    with pytest.raises(LabError, match="No lesson has the notebook 42-nothing") as info:
        by_notebook("42-nothing")
    assert "lab.lessons.LESSONS" in info.value.next_step


def test_a_reset_removes_the_run_time_objects_of_that_lesson_and_later_ones() -> None:
    assert PROBE_PODS in removed_by(1)
    assert PROBE_PODS in removed_by(5)  # 05 creates probe pods
    assert PROBE_PODS not in removed_by(6)
    assert all(EXERCISE_LABEL in removed_by(row.number) for row in LESSONS if row.number <= 7)
    assert removed_by(99) == []  # the teardown creates nothing


def test_every_exercise_belongs_to_a_lesson_of_the_table() -> None:
    ids = {row.id for row in LESSONS}
    solutions = sorted(p.stem for p in SOLUTIONS_DIR.glob("[0-9][0-9]-*.py"))
    assert solutions
    assert [s for s in solutions if s[:2] not in ids] == []


def test_each_part_names_what_stands_in_for_it_on_local_or_that_nothing_does() -> None:
    builders = [row for row in LESSONS if row.part]
    assert [row.number for row in builders] == [1, 2, 3, 4, 5, 6]
    without = [row.notebook for row in builders if not row.local_analog]
    assert without == ["05-scaling-and-resilience"]  # HPA, PDB, NetworkPolicy: cluster only


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
@pytest.mark.parametrize("stack", ["kind", "workshop"])
def test_every_lesson_object_is_in_the_rendered_stack(stack: str) -> None:
    settings = get_settings()
    objects = render("kind", settings) if stack == "kind" else learner_stack(settings)
    for row in with_objects():
        for kind, name in row.objects:
            assert find(objects, kind, name, settings.namespace), (row.notebook, kind, name)


def test_each_lesson_expects_the_parts_of_the_lessons_before_it() -> None:
    assert expected_parts(0) == ()
    assert expected_parts(1) == ()
    assert expected_parts(3) == ("namespace", "config")
    assert expected_parts(7) == PARTS
    assert expected_parts(99) == PARTS


def test_parts_are_built_in_order_and_a_missing_one_is_named_with_the_reason() -> None:
    assert with_part(("namespace", "config"), "postgres") == ("namespace", "config", "postgres")
    assert with_part(PARTS, "config") == ("namespace", "config")  # what it rests on, no more
    with pytest.raises(LabError, match=r"backend \(lesson 04\) needs postgres first") as info:
        with_part(("namespace", "config"), "backend")
    assert "CrashLoopBackOff" in info.value.problem
    assert "lesson 03" in info.value.next_step
    assert "lab.connect(lesson=4) build everything before lesson 04" in info.value.next_step
    with pytest.raises(LabError, match="There is no part 'database'"):
        with_part(PARTS, "database")
    assert check_parts(["namespace", "config"]) == ("namespace", "config")
    with pytest.raises(LabError, match="built in order"):
        check_parts(["namespace", "postgres"])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
@pytest.mark.parametrize("target", ["kind", "cluster"])
def test_every_rendered_object_belongs_to_one_part_and_each_lessons_objects_to_its_own(
    target: str,
) -> None:
    settings = get_settings()
    objects = render(target, settings, image="registry.example/ironclad-backend:1")
    parts = {(o["kind"], o["metadata"]["name"]): part_of(o) for o in objects}
    assert set(parts.values()) - {None} <= set(PARTS)
    for row in with_objects():
        for kind, name in row.objects:
            assert parts[(kind, name)] == row.part, (row.notebook, kind, name)
    assert parts[("StatefulSet", "postgres")] == "postgres"
    assert parts[("Secret", "postgres-secret")] == "config"
    assert parts[("Secret", "grafana-admin")] == "monitoring"  # Grafana's, with Grafana
    assert parts[("NetworkPolicy", "prometheus")] == "monitoring"
    assert parts[("NetworkPolicy", "backend")] == "resilience"
    provided = sorted(k for k, part in parts.items() if part is None)
    if target == "kind":  # metrics-server: the cluster's, applied by `lab up` itself
        assert provided
        assert all("metrics" in name for _, name in provided)
        assert parts[("Namespace", settings.namespace)] == "namespace"
    else:  # the instructor's namespace: nothing of the cluster is the learner's to apply
        assert provided == []
    assert sum(len(objects_of(objects, p)) for p in PARTS) + len(provided) == len(objects)


def test_an_object_no_part_claims_is_refused() -> None:
    stray = {"kind": "CronJob", "metadata": {"name": "nightly", "namespace": "ironclad-demo"}}
    with pytest.raises(LabError, match="No part of the stack claims CronJob/nightly"):
        part_of(stray)
