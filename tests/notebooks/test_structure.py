"""The committed notebooks have the shape DESIGN.md asks for (no kernel needed)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from lab.lessons import LESSONS

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = [row.notebook for row in LESSONS]  # lab.lessons: the one table of lessons
# Calls that reach a Kubernetes API server (rendering with `kubectl kustomize` does not).
CLUSTER_API = re.compile(
    r"\.k8s\b|\bkill_pod\(|\bCluster[.(]|kubernetes\.client|"
    r"kubectl[\"',\s]+(?:get|apply|delete|describe|rollout|scale|drain|exec|"
    r"logs|port-forward|top|cordon|wait)\b"
)
CLUSTER_MAGIC = re.compile(r"%%cluster( --show( \S+/\S+)+)?\n")  # the first line, --show optional
SECTIONS = (
    "## Learning goals",
    "## Prerequisites",
    "**Time:**",
    "## Exercise",
    "## Summary",
    "## What's next",
)


def load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_walkthrough_is_complete() -> None:
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_without_outputs(name: str) -> None:
    nb = load(name)
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, f"{name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("name", EXPECTED)
def test_parameters_cell(name: str) -> None:
    nb = load(name)
    cells = [c for c in nb.cells if "parameters" in tags(c)]
    assert len(cells) == 1, f"{name}: exactly one cell must be tagged `parameters`"
    assigned = {
        t.id
        for node in ast.parse(cells[0].source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    headless = nb.metadata.get("ironclad", {}).get("headless_parameters", {})
    assert {"TARGET", "NAMESPACE"} <= assigned
    assert set(headless) <= assigned, f"{name}: shortened timings for undeclared parameters"


@pytest.mark.parametrize("name", EXPECTED)
def test_learner_sections(name: str) -> None:
    markdown = "\n".join(c.source for c in load(name).cells if c.cell_type == "markdown")
    missing = [s for s in SECTIONS if s not in markdown]
    assert not missing, f"{name}: missing {missing}"


@pytest.mark.parametrize("name", EXPECTED)
def test_checks_run_on_every_target(name: str) -> None:
    local = [c for c in code_cells(load(name)) if "needs-cluster" not in tags(c)]
    assert any("lab.check(" in c.source for c in local), (
        f"{name}: needs at least one lab.check that also runs on the local target"
    )


@pytest.mark.parametrize("name", EXPECTED)
def test_cluster_cells_are_tagged_and_guarded(name: str) -> None:
    for index, cell in enumerate(code_cells(load(name))):
        tagged = "needs-cluster" in tags(cell)
        if CLUSTER_API.search(cell.source):
            assert tagged, f"{name} code cell {index} touches the cluster API without the tag"
        if tagged:
            assert CLUSTER_MAGIC.match(cell.source), (
                f"{name} code cell {index} is tagged needs-cluster but lacks %%cluster"
            )


MAX_CELL_LINES = 20  # code lines a learner reads at once (issue 22); plumbing lives in `lab`


def code_lines(source: str) -> int:
    """Lines of code in a cell: blanks, comments and the `%%cluster` line aside."""
    return sum(
        1
        for line in source.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith("%%")
    )


@pytest.mark.parametrize("name", EXPECTED)
def test_code_cells_stay_short(name: str) -> None:
    long = {
        index: lines
        for index, cell in enumerate(load(name).cells)
        if cell.cell_type == "code" and (lines := code_lines(cell.source)) > MAX_CELL_LINES
    }
    assert not long, f"{name}: cells over {MAX_CELL_LINES} lines of code (index: lines): {long}"


IMPORT = re.compile(r"^(import |from \S+ import )", re.MULTILINE)


@pytest.mark.parametrize("name", EXPECTED)
def test_imports_up_front(name: str) -> None:
    """Every import in the one cell after `parameters` (issue 22), so a learner sees up front
    what the lesson uses; a `%%cluster` cell keeps its own, since the local target never runs
    it (and ruff, which does not read cell magics, would call them unused up front)."""
    cells = code_cells(load(name))
    assert "parameters" in tags(cells[0]), f"{name}: the parameters cell comes first"
    assert IMPORT.search(cells[1].source), f"{name}: code cell 1 holds the imports"
    late = [
        index
        for index, cell in enumerate(cells[2:], start=2)
        if not CLUSTER_MAGIC.match(cell.source) and IMPORT.search(cell.source)
    ]
    assert not late, f"{name}: code cells {late} import; move the imports to code cell 1"
