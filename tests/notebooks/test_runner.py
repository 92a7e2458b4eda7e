"""The runner and its report, on small synthetic notebooks executed by real kernels.

The notebooks here do not talk to a lab stack, so `StaticStack` only names a target and a
state file; the stack itself is exercised by the full runs (test_headless.py, test_cli_runner.py).
Skipped cells are explained by the notebook's kernel (`%%cluster --explain`), which renders
the `--show` objects with `kubectl kustomize` (tests/unit/lab/test_magics.py tests that part).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from lab import cli, notrun
from lab.errors import LabError
from lab.exercises import MIMETYPE as EXERCISE_MIMETYPE
from lab.runner import execute, report, run
from lab.runner.kernels import KernelPool
from lab.runner.solutions import load_solutions
from lab.stack import State, write_state
from lab.targets import Endpoints

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker


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
            "from lab.capabilities import Capability\n"
            "Capability('networkpolicy', False, 'not enforced here').skip('the enforcement check')"
        ),
        code(
            "%%cluster --show ConfigMap/backend-config\nenv.k8s.pods()\n"
            "raise RuntimeError('a cluster cell ran on the local target')\n"
            "lab.check(False, expected=f'the ConfigMap in {NAMESPACE}, waited {WAIT_S} s')",
            "needs-cluster",
        ),
        code(
            "import itertools\nfrom lab.waits import poll\nattempts = itertools.count()\n"
            "done = poll(lambda: next(attempts) >= 2, what='two polls', timeout=30, interval=0.05)"
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
    return execute.execute_notebooks(
        notebooks, stack, workdir / "report", cell_budget=120, run_budget=600
    )


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
        "cells_executed": 7,
        "cells_skipped": 1,
        "checks_passed": 1,
        "exercises_passed": 0,
        "checks_skipped": 1,
        "failure": None,
    }
    assert ok.tally.checks == (report.Check("shortened wait", "0.5"),)
    assert ok.tally.checks_skipped == ("the enforcement check: not enforced here",)
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


def test_skipped_cells_show_what_they_would_have_done(ran: report.RunResult) -> None:
    assert ran.notebooks[0].executed_path is not None
    nb = nbformat.read(ran.notebooks[0].executed_path, as_version=4)
    skipped = next(c for c in nb.cells if "needs-cluster" in c.metadata.get("tags", []))
    assert skipped.source.startswith("%%cluster --show")  # the notebook's own source is kept
    [output] = skipped.outputs  # the kernel explained it: nothing of it ran (no RuntimeError)
    assert output.data[notrun.MIMETYPE] == {
        "target": "local",
        "calls": ["env.k8s.pods()"],
        "expectations": ["the ConfigMap in ironclad-demo, waited 0.5 s"],  # the kernel's values
        "objects": ["ConfigMap/backend-config"],
    }
    assert '<pre style="font-family: monospace' in output.data["text/html"]


def test_headless_progress_bars_print_one_final_line(ran: report.RunResult) -> None:
    assert ran.notebooks[0].executed_path is not None
    nb = nbformat.read(ran.notebooks[0].executed_path, as_version=4)
    polled = next(c for c in nb.cells if "two polls" in c.source)
    assert [o.output_type for o in polled.outputs] == ["stream"]
    assert polled.outputs[0].text.startswith("two polls: 0/30 s in ")
    assert polled.outputs[0].text.count("\n") == 1
    widgets = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if report.WIDGET_MIMETYPE in o.get("data", {})
    ]
    assert widgets == []


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
    assert set(summary) == {"target", "language", "duration_s", "notebooks"}
    assert summary["language"] == "en"
    assert [set(nb) for nb in summary["notebooks"]] == [
        {
            "name",
            "status",
            "duration_s",
            "cells_executed",
            "cells_skipped",
            "checks_passed",
            "exercises_passed",
            "checks_skipped",
            "failure",
        }
    ] * 3
    assert [nb["status"] for nb in summary["notebooks"]] == ["passed", "failed", "not run"]
    page = html_path.read_text()
    for expected in (
        "01-ok",
        "02-fails",
        "03-after",
        "shortened wait",
        "the enforcement check: not enforced here",
        "one plus one is three",
        "data:image/png;base64",
        "Not run here",
        "the ConfigMap in ironclad-demo, waited 0.5 s",
        "exercises passed",
    ):
        assert expected in page
    table = report.summary_table(ran, html_path)
    assert "1 passed, 1 failed, 1 not run" in table
    assert len(table.splitlines()) < 25


def test_cluster_cells_run_on_kind_before_any_import_lab(tmp_path: Path) -> None:
    state = tmp_path / "s.json"  # a lab on kind, as `lab up` records it (no process behind it)
    endpoints = Endpoints(
        target="kind", backend="u", backends=["u"], prometheus="p", chaos_token="t"
    )
    write_state(state, State(endpoints, os.getpid(), "ironclad-demo"))
    path = write_notebook(
        tmp_path, "01-kind", code("%%cluster\nprint('cluster cell ran')", "needs-cluster")
    )
    result = execute.execute_notebooks(
        [path], StaticStack("kind", state), tmp_path / "out", cell_budget=60, run_budget=120
    )
    assert result.passed, result.notebooks[0].failure
    assert result.notebooks[0].tally.cells_skipped == 0
    assert result.notebooks[0].tally.cells_executed == 2  # papermill's injected parameters + it
    assert result.notebooks[0].executed_path is not None
    nb = nbformat.read(result.notebooks[0].executed_path, as_version=4)
    assert nb.cells[-1].outputs[0].text == "cluster cell ran\n"  # %%cluster without `import lab`


def test_the_kernels_speak_the_runs_language(tmp_path: Path) -> None:
    """`run --lang es`: each kernel gets LAB_LANG=es, and its lab extension (loaded before any
    `import lab`) speaks it; a run's summary says so."""
    path = write_notebook(tmp_path, "01-lang", code("import lab.i18n\nprint(lab.i18n.current())"))
    stack = StaticStack("local", tmp_path / "s.json")
    for language in ("es", "en"):
        out = tmp_path / language
        result = execute.execute_notebooks(
            [path], stack, out, cell_budget=60, run_budget=120, language=language
        )
        assert result.passed, result.notebooks[0].failure
        assert result.summary()["language"] == language
        nb = nbformat.read(out / path.name, as_version=4)
        assert nb.cells[-1].outputs[0].text == f"{language}\n"


def test_cell_budget_interrupts_a_hanging_cell(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path, "01-hangs", code("import time\ntime.sleep(120)"), code("print('not reached')")
    )
    result = execute.execute_notebooks(
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
    assert failure.timed_out_after_s == 2
    assert result.notebooks[0].duration_s < 60


IGNORES_INTERRUPT = (
    "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(120)"
)


def test_a_cell_that_outlives_its_timeout_and_the_interrupt_is_named_in_the_report(
    tmp_path: Path,
) -> None:
    """Issue 20 item 9: a cell that goes on after nbclient's interrupt used to make nbclient
    raise its own CellTimeoutError past the engine: the notebook showed as completed with no
    error and 0 cells executed, the reason only on stderr. The report and summary.json now say
    which cell timed out and after how long."""
    path = write_notebook(
        tmp_path, "01-stuck", code("print('before')"), code(IGNORES_INTERRUPT), code("print(2)")
    )
    stack = StaticStack("local", tmp_path / "s.json")
    result = execute.execute_notebooks(
        [path], stack, tmp_path / "out", cell_budget=2, run_budget=120
    )
    notebook = result.notebooks[0]
    failure = notebook.failure
    assert failure is not None
    assert (notebook.status, failure.ename, failure.timed_out_after_s) == (
        "failed",
        "CellTimeoutError",
        2,
    )
    assert failure.source == IGNORES_INTERRUPT
    assert "was interrupted and did not stop" in failure.evalue
    assert notebook.tally.cells_executed == 3  # the injected parameters, print, the stuck cell
    html = report.write_report(result, tmp_path / "out").read_text()
    assert f"01-stuck: cell #{failure.cell_index} timed out after 2 s" in html
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["notebooks"][0]["cells_executed"] == 3
    assert summary["notebooks"][0]["failure"] == {
        "cell_index": failure.cell_index,
        "ename": "CellTimeoutError",
        "evalue": failure.evalue,
        "timed_out_after_s": 2.0,
    }
    executed = nbformat.read(tmp_path / "out" / "01-stuck.ipynb", as_version=4)
    failed = [c for c in executed.cells if c.metadata.get("papermill", {}).get("exception")]
    assert [c.source for c in failed] == [IGNORES_INTERRUPT]
    assert failed[0].outputs[-1].ename == "CellTimeoutError"


def test_whole_run_budget_is_shared(tmp_path: Path) -> None:
    first = write_notebook(tmp_path, "01-slow", code("import time\ntime.sleep(120)"))
    second = write_notebook(tmp_path, "02-next", code("print(1)"))
    result = execute.execute_notebooks(
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
    result = execute.execute_notebooks(
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
    # Unix sockets, no TCP ports a load's outgoing connection could take first (POSIX) ...
    assert {m.transport for m in managers} == {"ipc"}
    channels = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")
    sockets = {Path(f"{m.ip}-{getattr(m, c)}") for m in managers for c in channels}
    assert len(sockets) == 15  # each kernel's own (a shared name mixed kernels' messages up)
    assert {s.parent for s in sockets} == {pool.sockets}
    assert not pool.sockets.exists()  # ... removed with the pool


# An exercise with a verifier registered in the notebook itself (lab/exercises/lessonNN.py in
# the real lab), its untouched cell, and a cluster exercise that the local target skips.
VERIFIER = """import lab
from lab.exercises import Outcome, verifier

@verifier("90-double", hint="doubling a number means adding it to itself")
def double(answer, *, base):
    return Outcome(answer == 2 * base, repr(answer))

@verifier("91-cluster", hint="never reached on local")
def on_cluster(answer):
    return Outcome(False, repr(answer))

base = 3"""
UNTOUCHED = 'answer = ...  # twice `base`\nlab.verify("90-double", answer, base=base)'
CLUSTER_EXERCISE = '%%cluster\nanswer = ...\nlab.verify("91-cluster", answer)'


def exercise(source: str, exercise_id: str, *tags: str) -> nbformat.NotebookNode:
    cell = code(source, "exercise", *tags)
    cell.metadata["ironclad"] = {"exercise": exercise_id}
    return cell


@pytest.fixture(scope="module")
def exercise_notebook(workdir: Path) -> Path:
    folder = workdir / "exercises"
    folder.mkdir()
    return write_notebook(
        folder,
        "01-exercise",
        code(VERIFIER),
        exercise(UNTOUCHED, "90-double"),
        exercise(CLUSTER_EXERCISE, "91-cluster", "needs-cluster"),
    )


def solutions_dir(folder: Path, double: str) -> Path:
    folder.mkdir()
    (folder / "90-double.py").write_text(
        f'answer = {double}\nlab.verify("90-double", answer, base=base)\n'
    )
    (folder / "91-cluster.py").write_text(
        '%%cluster\nanswer = 1\nlab.verify("91-cluster", answer)\n'
    )
    return folder


def run_exercises(path: Path, out: Path, solutions: dict[str, str] | None) -> report.RunResult:
    stack = StaticStack("local", out / "s.json")
    return execute.execute_notebooks(
        [path], stack, out, cell_budget=60, run_budget=120, solutions=solutions
    )


def exercise_outputs(result: report.RunResult) -> list[dict[str, object]]:
    assert result.notebooks[0].executed_path is not None
    nb = nbformat.read(result.notebooks[0].executed_path, as_version=4)
    return [
        o.data[EXERCISE_MIMETYPE]
        for c in nb.cells
        for o in c.get("outputs", [])
        if EXERCISE_MIMETYPE in o.get("data", {})
    ]


def test_a_solved_exercise_passes_and_counts(exercise_notebook: Path, tmp_path: Path) -> None:
    solutions = load_solutions([exercise_notebook], solutions_dir(tmp_path / "sol", "base * 2"))
    result = run_exercises(exercise_notebook, tmp_path / "out", solutions)
    assert result.passed, result.notebooks[0].failure
    summary = result.notebooks[0].summary()
    assert (summary["exercises_passed"], summary["cells_skipped"]) == (1, 1)
    assert [o["exercise"] for o in exercise_outputs(result)] == ["90-double"]
    assert result.notebooks[0].executed_path is not None
    nb = nbformat.read(result.notebooks[0].executed_path, as_version=4)
    assert "answer = base * 2" in nb.cells[3].source  # the solution ran in the cell's place
    assert "answer = 1" in nb.cells[4].source  # explained with the solution's source
    assert "exercises" in report.summary_table(result)


def test_a_wrong_solution_fails_the_run_with_the_hint(
    exercise_notebook: Path, tmp_path: Path
) -> None:
    solutions = load_solutions([exercise_notebook], solutions_dir(tmp_path / "sol", "base + 1"))
    result = run_exercises(exercise_notebook, tmp_path / "out", solutions)
    assert not result.passed
    failure = result.notebooks[0].failure
    assert failure is not None
    assert failure.ename == "ExerciseFailedError"
    assert "Exercise 90-double: not yet — saw 4" in failure.evalue
    assert "doubling a number means adding it to itself" in failure.text()


def test_without_solutions_an_untouched_exercise_passes_and_counts_zero(
    exercise_notebook: Path, tmp_path: Path
) -> None:
    result = run_exercises(exercise_notebook, tmp_path / "out", None)
    assert result.passed, result.notebooks[0].failure
    assert result.notebooks[0].summary()["exercises_passed"] == 0
    assert [o["status"] for o in exercise_outputs(result)] == ["not attempted"]


def test_a_missing_solution_file_is_named_before_anything_runs(
    exercise_notebook: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "sol"
    folder.mkdir()
    (folder / "90-double.py").write_text('lab.verify("90-double", 6, base=3)\n')
    report_dir = tmp_path / "report"
    argv = ["run", "--target", "local", "--notebooks-dir", str(exercise_notebook.parent)]
    code_ = cli.main([*argv, "--report-dir", str(report_dir), "--solutions", str(folder)])
    err = capsys.readouterr().err
    assert code_ == 2
    assert str(folder / "91-cluster.py") in err
    assert str(folder / "90-double.py") not in err
    assert not report_dir.exists()  # no stack started, no notebook run


def test_an_exercise_cell_without_an_id_is_named(tmp_path: Path) -> None:
    path = write_notebook(tmp_path, "01-noid", code("lab.verify('x', 1)", "exercise"))
    with pytest.raises(LabError, match=r"01-noid.ipynb: cell #1 is tagged 'exercise' but has no"):
        load_solutions([path], tmp_path)
