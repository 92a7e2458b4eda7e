"""One headless run: start the stack, run the notebooks in order, write the report, tear down."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import papermill
from papermill.exceptions import PapermillExecutionError

from lab.errors import LabError
from lab.magics import Objects, rendered_objects
from lab.nb import code_cells, new_markdown_cell, read_notebook, write_notebook
from lab.progress import HEADLESS_ENV
from lab.progress import bar as progress_bar
from lab.runner import report
from lab.runner.diagnostics import diagnostics
from lab.runner.engine import ENGINE, CellPlan
from lab.runner.kernels import KernelPool, stop_kernel
from lab.settings import Settings, get_settings
from lab.stack import StackProcess
from lab.workshop.status import record_run

log = logging.getLogger(__name__)

# (per cell, whole run) by target; a shared cluster is as slow as kind
DEFAULT_BUDGETS = {"local": (300.0, 1200.0), "kind": (900.0, 5400.0), "cluster": (900.0, 5400.0)}


class RunInterruptedError(BaseException):
    """SIGTERM/SIGHUP in the runner: unwinds like Ctrl-C so the stack is always torn down."""


class Stack(Protocol):
    """The running lab the notebooks talk to."""

    @property
    def target(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def state_file(self) -> Path: ...

    def diagnostics(self) -> str: ...


@dataclass
class LabUp:
    """A `StackProcess` seen as the runner's `Stack`."""

    process: StackProcess

    @property
    def target(self) -> str:
        return self.process.target

    @property
    def namespace(self) -> str:
        return self.process.namespace

    @property
    def state_file(self) -> Path:
        return self.process.state_file

    def diagnostics(self) -> str:
        return diagnostics(self.process)


@dataclass(frozen=True)
class RunOptions:
    """What `ironclad-lab run` was asked to do."""

    target: str
    notebooks: Sequence[Path]
    report_dir: Path
    cell_timeout: float | None = None
    timeout: float | None = None
    solutions: Mapping[str, str] | None = None  # exercise id -> solved cell (--solutions)


def discover(notebooks_dir: Path, selection: str | None) -> list[Path]:
    """The notebooks to run, in order; `selection` is "03,06" (prefixes) or full names."""
    found = sorted(notebooks_dir.glob("[0-9]*.ipynb"))
    if not selection:
        return found
    wanted = [part.strip() for part in selection.split(",") if part.strip()]
    unknown = [w for w in wanted if not any(_matches(p, w) for p in found)]
    if unknown:
        names = ", ".join(p.stem for p in found) or "none"
        raise LabError(f"No notebook matches {', '.join(unknown)}.", f"Pick from: {names}.")
    return [p for p in found if any(_matches(p, w) for w in wanted)]


def _matches(path: Path, wanted: str) -> bool:
    return path.stem == wanted or path.stem.split("-", 1)[0] == wanted


def headless_parameters(path: Path, stack: Stack) -> dict[str, Any]:
    """The parameters papermill injects: target, namespace, the notebook's shortened timings."""
    nb = read_notebook(path, as_version=4)
    shortened = nb.metadata.get("ironclad", {}).get("headless_parameters", {})
    return {"TARGET": stack.target, "NAMESPACE": stack.namespace, **shortened}


def kernel_env(state_file: Path) -> dict[str, str]:
    """The kernels' environment: this process's, with LAB_STATE_FILE naming the run's stack
    and LAB_HEADLESS=1 (progress bars print one final line instead of a frozen widget)."""
    return {**os.environ, "LAB_STATE_FILE": str(state_file), HEADLESS_ENV: "1"}


def run_notebook(path: Path, out_dir: Path, stack: Stack, plan: CellPlan) -> report.NotebookResult:
    """Execute one notebook; on failure add the diagnostics next to the failing cell."""
    output = out_dir / path.name
    result = report.NotebookResult(path.stem, executed_path=output)
    started = time.monotonic()
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=headless_parameters(path, stack),
            engine_name=ENGINE,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(path.parent),
            plan=plan,
        )
        result.status = "passed"
    except PapermillExecutionError as exc:
        result.status = "failed"
        result.failure = report.Failure(
            path.stem,
            exc.cell_index,
            exc.source,
            exc.ename,
            exc.evalue,
            tuple(exc.traceback),
            stack.diagnostics(),
        )
        _add_diagnostics(output, result.failure)
    except BaseException:
        result.status = "failed"
        raise
    finally:
        result.duration_s = time.monotonic() - started
        if output.exists():
            result.tally = report.tally_notebook(read_notebook(output, as_version=4))
    return result


def _add_diagnostics(output: Path, failure: report.Failure) -> None:
    nb = read_notebook(output, as_version=4)
    failed = next(
        i for i, cell in enumerate(nb.cells) if cell.metadata.get("papermill", {}).get("exception")
    )
    text = (
        f"### Diagnostics collected by `ironclad-lab run` after this failure\n\n"
        f"```text\n{failure.diagnostics}\n```"
    )
    cell = new_markdown_cell(text)
    cell.metadata["tags"] = ["ironclad-diagnostics"]
    nb.cells.insert(failed + 1, cell)
    write_notebook(nb, output)


@dataclass
class _Run:
    """The state one `run_notebooks` call shares between its notebooks."""

    notebooks: Sequence[Path]
    stack: Stack
    report_dir: Path
    cell_budget: float
    deadline: float
    kernels: KernelPool
    objects: Objects
    solutions: Mapping[str, str]

    def notebook(self, number: int, slot: report.NotebookResult) -> report.NotebookResult:
        """Run notebook `number` with a progress bar; `slot` records a failure that escapes."""
        path = self.notebooks[number]
        kernel = self.kernels.take(number)
        cells = code_cells(read_notebook(path, as_version=4))
        label = f"[{number + 1}/{len(self.notebooks)}] {path.stem}"
        began = time.monotonic()
        bar = progress_bar(
            total=cells + 1, desc=label, unit="cell", leave=False, file=sys.stderr, disable=None
        )
        with bar:
            if bar.disable:  # no terminal to draw a bar on (CI logs): one line instead
                log.info("▶ %s (%d code cells) …", label, cells)
            plan = CellPlan(
                self.stack.target,
                self.cell_budget,
                self.deadline,
                self.objects,
                self.solutions,
                bar,
                kernel,
            )
            try:
                done = run_notebook(path, self.report_dir, self.stack, plan)
            except BaseException:
                slot.status, slot.duration_s = "failed", time.monotonic() - began
                raise
            finally:
                stop_kernel(kernel)
        log.info("%s", _progress_line(label, done))
        if done.failure is not None:
            log.error("%s", done.failure.text())
        return done


def run_notebooks(
    notebooks: Sequence[Path],
    stack: Stack,
    report_dir: Path,
    *,
    cell_budget: float,
    run_budget: float,
    kernels: KernelPool | None = None,
    objects: Objects | None = None,
    solutions: Mapping[str, str] | None = None,
) -> report.RunResult:
    """Run `notebooks` in order against `stack`, stopping at the first failure.

    `objects`: the rendered manifests skipped cells show (default: the kind overlay, rendered
    on first use); `solutions`: exercise id -> the solved cell run in its place.
    """
    result = report.RunResult(stack.target, [report.NotebookResult(p.stem) for p in notebooks])
    started = time.monotonic()
    report_dir.mkdir(parents=True, exist_ok=True)
    pool = kernels or KernelPool(notebooks, kernel_env(stack.state_file))
    run = _Run(
        notebooks,
        stack,
        report_dir,
        cell_budget,
        started + run_budget,
        pool,
        objects or rendered_objects(get_settings()),
        solutions or {},
    )
    try:
        for number, slot in enumerate(result.notebooks):
            if time.monotonic() >= run.deadline:
                result.note = f"the whole-run budget ({run_budget:.0f} s) was used up"
                break
            result.notebooks[number] = run.notebook(number, slot)
            if result.notebooks[number].failure is not None:
                break
    except (KeyboardInterrupt, RunInterruptedError) as exc:
        result.note = f"interrupted ({type(exc).__name__ if str(exc) == '' else exc})"
    finally:
        pool.close()
        result.duration_s = time.monotonic() - started
    return result


def _progress_line(label: str, nb: report.NotebookResult) -> str:
    return (
        f"{report.STATUS_MARK[nb.status]} {label} {nb.status} in {nb.duration_s:.1f} s — "
        f"{nb.tally.cells_executed} cells executed, {nb.tally.cells_skipped} skipped, "
        f"{len(nb.tally.checks)} checks passed, {nb.tally.exercises_passed} exercises passed"
    )


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise RunInterruptedError(signal.Signals(signum).name)


def run_lab(options: RunOptions, settings: Settings) -> int:
    """Start the stack, run the notebooks, write the report; exit code 0 only when all passed.

    Must run in the main thread (it installs SIGTERM/SIGHUP handlers).
    """
    report_dir = options.report_dir.resolve()
    clean(report_dir)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    stack_settings = replace(settings, state_file_override=report_dir / "lab-state.json")
    up = StackProcess(options.target, stack_settings, report_dir / "lab-up.log")
    notebooks = options.notebooks
    log.info("Starting the lab (target=%s) …", options.target)
    result = report.RunResult(options.target, [report.NotebookResult(p.stem) for p in notebooks])
    kernels = KernelPool(notebooks, kernel_env(up.state_file))
    try:
        with kernels:
            kernels.prefetch(0)  # the first kernels boot while the lab comes up
            with up:
                cell_default, run_default = DEFAULT_BUDGETS[up.target]
                log.info("Lab ready on target=%s; running %d notebooks.", up.target, len(notebooks))
                result = run_notebooks(
                    notebooks,
                    LabUp(up),
                    report_dir,
                    cell_budget=options.cell_timeout or cell_default,
                    run_budget=options.timeout or run_default,
                    kernels=kernels,
                    objects=rendered_objects(settings),
                    solutions=options.solutions,
                )
                # workshop status reads the learner's results (cluster target only)
                record_run(result.summary(), up.namespace, stack_settings.kube_context)
                log.info("Tearing the lab down …")
    except LabError as exc:
        result.note = f"the lab did not come up: {exc.problem.splitlines()[0]}"
        log.error("error: %s", exc)
    except (KeyboardInterrupt, RunInterruptedError):
        result.note = "interrupted while the lab was starting or stopping"
    html_path = report.write_report(result, report_dir)
    log.info("%s", report.summary_table(result, html_path))
    if result.note.startswith("interrupted"):
        return 130
    return 0 if result.passed else 1


def clean(report_dir: Path) -> None:
    """Remove the previous run's results so nothing stale is mistaken for this run."""
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in [
        *report_dir.glob("*.ipynb"),
        report_dir / "summary.json",
        report_dir / "index.html",
    ]:
        stale.unlink(missing_ok=True)
