"""The runner and its report, on small synthetic notebooks executed by real kernels.

The notebooks here do not talk to a lab stack, so `StaticStack` only names a target and a
state file; the stack itself is exercised by the full runs (test_headless.py, test_cli_runner.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from lab import cli
from lab.errors import LabError
from lab.runner import report, run
from lab.runner.kernels import KernelPool


@dataclass
class StaticStack:
    target: str
    state_file: Path
    namespace: str = "ironclad-demo"

    def diagnostics(self) -> str:
        return f"diagnostics for target={self.target}"


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write_notebook(
    folder: Path,
    name: str,
    *cells: nbformat.NotebookNode,
    headless: dict[str, object] | None = None,
) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}"), *cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if headless:
        nb.metadata["ironclad"] = {"headless_parameters": headless}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


PARAMETERS = 'TARGET = "auto"\nNAMESPACE = "ironclad-demo"\nWAIT_S = 60.0'


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runner")


@pytest.fixture(scope="module")
def notebooks(workdir: Path) -> list[Path]:
    folder = workdir / "notebooks"
    folder.mkdir()
    ok = write_notebook(
        folder,
        "01-ok",
        code(PARAMETERS, "parameters"),
        code("import os\nprint(TARGET, NAMESPACE, WAIT_S, os.environ['LAB_STATE_FILE'])"),
        code("import lab\nlab.check(WAIT_S < 1, expected='shortened wait', seen=WAIT_S)"),
        code(
            "%%cluster\nraise RuntimeError('a cluster cell ran on the local target')",
            "needs-cluster",
        ),
        code(
            "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
            "from IPython.display import display\nfig, ax = plt.subplots()\n"
            "ax.plot([0, 1], [1, 0])\ndisplay(fig)\nplt.close(fig)"
        ),
        headless={"WAIT_S": 0.5},
    )
    fails = write_notebook(
        folder,
        "02-fails",
        code(PARAMETERS, "parameters"),
        code(
            "import lab\nlab.check(1 + 1 == 3, expected='one plus one is three', seen=1 + 1, "
            "hint='arithmetic wins')"
        ),
    )
    after = write_notebook(folder, "03-after", code("print('never')"))
    return [ok, fails, after]


@pytest.fixture(scope="module")
def ran(notebooks: list[Path], workdir: Path) -> report.RunResult:
    stack = StaticStack("local", workdir / "state.json")
    return run.run_notebooks(notebooks, stack, workdir / "report", cell_budget=120, run_budget=600)


def test_run_stops_at_the_first_failure(ran: report.RunResult) -> None:
    assert [nb.status for nb in ran.notebooks] == ["passed", "failed", "not run"]
    assert not ran.passed
    assert ran.target == "local"


def test_cells_are_counted_and_cluster_cells_skipped_on_local(ran: report.RunResult) -> None:
    ok, fails, after = ran.notebooks
    assert ok.summary() == {
        "name": "01-ok",
        "status": "passed",
        "duration_s": ok.summary()["duration_s"],
        "cells_executed": 5,
        "cells_skipped": 1,
        "checks_passed": 1,
    }
    assert ok.tally.checks == (report.Check("shortened wait", "0.5"),)
    assert (fails.tally.cells_executed, fails.tally.checks) == (3, ())
    assert after.summary()["cells_executed"] == 0
    assert after.duration_s == 0


def test_parameters_and_state_file_reach_the_kernel(ran: report.RunResult, workdir: Path) -> None:
    assert ran.notebooks[0].executed_path is not None
    nb = nbformat.read(ran.notebooks[0].executed_path, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "WAIT_S = 0.5" in injected.source
    assert 'TARGET = "local"' in injected.source
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"local ironclad-demo 0.5 {workdir / 'state.json'}" in printed
    assert "skipped: needs a Kubernetes cluster (target=local)" in printed


def test_failure_carries_source_traceback_and_diagnostics(ran: report.RunResult) -> None:
    failure = ran.notebooks[1].failure
    assert failure is not None
    assert failure.ename == "CheckFailedError"
    assert "one plus one is three" in failure.source
    text = failure.text()
    assert "arithmetic wins" in text
    assert "diagnostics for target=local" in text
    assert ran.notebooks[1].executed_path is not None
    nb = nbformat.read(ran.notebooks[1].executed_path, as_version=4)
    failed = next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("papermill", {}).get("exception")
    )
    assert "ironclad-diagnostics" in nb.cells[failed + 1].metadata["tags"]
    assert "diagnostics for target=local" in nb.cells[failed + 1].source


def test_report_files(ran: report.RunResult, tmp_path: Path) -> None:
    html_path = report.write_report(ran, tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert set(summary) == {"target", "duration_s", "notebooks"}
    assert [set(nb) for nb in summary["notebooks"]] == [
        {"name", "status", "duration_s", "cells_executed", "cells_skipped", "checks_passed"}
    ] * 3
    assert [nb["status"] for nb in summary["notebooks"]] == ["passed", "failed", "not run"]
    page = html_path.read_text()
    for expected in (
        "01-ok",
        "02-fails",
        "03-after",
        "shortened wait",
        "one plus one is three",
        "data:image/png;base64",
        "skipped: needs a Kubernetes cluster",
    ):
        assert expected in page
    table = report.summary_table(ran, html_path)
    assert "1 passed, 1 failed, 1 not run" in table
    assert len(table.splitlines()) < 25


def test_cluster_cells_run_on_kind(tmp_path: Path) -> None:
    path = write_notebook(tmp_path, "01-kind", code("print('cluster cell ran')", "needs-cluster"))
    result = run.run_notebooks(
        [path],
        StaticStack("kind", tmp_path / "s.json"),
        tmp_path / "out",
        cell_budget=60,
        run_budget=120,
    )
    assert result.passed
    assert result.notebooks[0].tally.cells_skipped == 0
    assert result.notebooks[0].tally.cells_executed == 2  # papermill's injected parameters + it


def test_cell_budget_interrupts_a_hanging_cell(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path, "01-hangs", code("import time\ntime.sleep(120)"), code("print('not reached')")
    )
    result = run.run_notebooks(
        [path],
        StaticStack("local", tmp_path / "s.json"),
        tmp_path / "out",
        cell_budget=2,
        run_budget=120,
    )
    failure = result.notebooks[0].failure
    assert failure is not None
    assert failure.ename == "CellTimeoutError"
    assert "per-cell time budget (2 s)" in failure.evalue
    assert result.notebooks[0].duration_s < 60


def test_whole_run_budget_is_shared(tmp_path: Path) -> None:
    first = write_notebook(tmp_path, "01-slow", code("import time\ntime.sleep(120)"))
    second = write_notebook(tmp_path, "02-next", code("print(1)"))
    result = run.run_notebooks(
        [first, second],
        StaticStack("local", tmp_path / "s.json"),
        tmp_path / "out",
        cell_budget=100,
        run_budget=3,
    )
    assert [nb.status for nb in result.notebooks] == ["failed", "not run"]
    assert result.notebooks[0].failure is not None
    assert "whole-run time budget" in result.notebooks[0].failure.evalue


def test_selection_by_number_and_name(notebooks: list[Path]) -> None:
    folder = notebooks[0].parent
    assert [p.stem for p in run.discover(folder, "03,01")] == ["01-ok", "03-after"]
    assert [p.stem for p in run.discover(folder, "02-fails")] == ["02-fails"]
    assert len(run.discover(folder, None)) == 3
    with pytest.raises(LabError, match="No notebook matches 07"):
        run.discover(folder, "07")


def test_no_notebooks_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code_ = cli.main(["run", "--notebooks-dir", str(tmp_path), "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code_ == 2
    assert err.count("\n") == 1
    assert "No notebooks to run" in err


def test_kernels_started_ahead_are_all_stopped(tmp_path: Path) -> None:
    from jupyter_core.utils import run_sync

    paths = [
        write_notebook(tmp_path, "01-ok", code("print(1)")),
        write_notebook(tmp_path, "02-fails", code("1 / 0")),
        write_notebook(tmp_path, "03-never", code("print(3)")),
    ]
    pool = KernelPool(paths)
    pool.prefetch(0)
    managers = list(pool.started.values())
    result = run.run_notebooks(
        paths,
        StaticStack("local", tmp_path / "s.json"),
        tmp_path / "out",
        cell_budget=60,
        run_budget=120,
        kernels=pool,
    )
    assert [nb.status for nb in result.notebooks] == ["passed", "failed", "not run"]
    assert len(managers) == 3  # the third one booted although its notebook never ran
    assert not pool.started
    assert not any(run_sync(m.is_alive)() for m in managers)
