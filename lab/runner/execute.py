"""Running notebooks through papermill against a stack: one notebook, or a lane's share of a run.

`lab.runner.run` starts the stacks and imports this module while they come up: papermill,
nbconvert and pandas take seconds to import.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import papermill
from papermill.exceptions import PapermillExecutionError

from lab.contract import KERNEL
from lab.i18n import SOURCE_LANGUAGE, _, ngettext
from lab.nb import code_cells, new_markdown_cell, read_notebook, write_notebook
from lab.progress import bar as progress_bar
from lab.runner import report
from lab.runner.diagnostics import diagnostics
from lab.runner.engine import ENGINE, TIMED_OUT_KEY, CellPlan
from lab.runner.kernels import KernelPool, kernel_environ, stop_kernel
from lab.runner.lanes import Share
from lab.stack import StackProcess

log = logging.getLogger(__name__)


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


def headless_parameters(path: Path, stack: Stack) -> dict[str, Any]:
    """The parameters papermill injects: target, namespace, the notebook's shortened timings."""
    nb = read_notebook(path, as_version=4)
    shortened = nb.metadata.get("ironclad", {}).get("headless_parameters", {})
    return {"TARGET": stack.target, "NAMESPACE": stack.namespace, **shortened}


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
            kernel_name=KERNEL,
            progress_bar=False,
            cwd=str(path.parent),
            plan=plan,
        )
        result.status = "passed"
    except PapermillExecutionError as exc:
        result.status = "failed"
        executed = read_notebook(output, as_version=4)
        failed = next(  # papermill's error markers shift the cells: found by its mark
            i
            for i, cell in enumerate(executed.cells)
            if cell.metadata.get("papermill", {}).get("exception")
        )
        timed_out = executed.cells[failed].metadata.get(TIMED_OUT_KEY)
        result.failure = report.Failure(
            path.stem,
            exc.cell_index,
            exc.source,
            exc.ename,
            exc.evalue,
            tuple(exc.traceback),
            stack.diagnostics(),
            float(timed_out) if timed_out is not None else None,
        )
        _add_diagnostics(executed, failed, result.failure)
        write_notebook(executed, output)
    except BaseException:
        result.status = "failed"
        raise
    finally:
        result.duration_s = time.monotonic() - started
        if output.exists():
            result.tally = report.tally_notebook(read_notebook(output, as_version=4))
    return result


def _add_diagnostics(nb: Any, failed: int, failure: report.Failure) -> None:
    """Add the diagnostics as a markdown cell after the failed cell `failed` of `nb`."""
    heading = _("Diagnostics collected by `ironclad-lab run` after this failure")
    text = f"### {heading}\n\n```text\n{failure.diagnostics}\n```"
    cell = new_markdown_cell(text)
    cell.metadata["tags"] = ["ironclad-diagnostics"]
    nb.cells.insert(failed + 1, cell)


@dataclass
class _Run:
    """The state one `execute_notebooks` call shares between its notebooks."""

    notebooks: Sequence[Path]
    stack: Stack
    report_dir: Path
    cell_budget: float
    deadline: float
    kernels: KernelPool
    solutions: Mapping[str, str]
    share: Share

    def notebook(self, number: int, slot: report.NotebookResult) -> report.NotebookResult:
        """Run notebook `number` with a progress bar; `slot` records a failure that escapes."""
        path = self.notebooks[number]
        kernel = self.kernels.take(number)
        cells = code_cells(read_notebook(path, as_version=4))
        label = f"[{self.share.positions[number] + 1}/{self.share.total}] {path.stem}"
        began = time.monotonic()
        bar = progress_bar(
            total=cells + 1,
            desc=label,
            unit="cell",
            leave=False,
            file=sys.stderr,
            disable=None,
            position=self.share.row,
        )
        with bar:
            if bar.disable:  # no terminal to draw a bar on (CI logs): one line instead
                starting = ngettext(
                    "▶ {label} ({count} code cell) …", "▶ {label} ({count} code cells) …", cells
                )
                log.info("%s", starting.format(label=label, count=cells))
            plan = CellPlan(
                self.stack.target,
                self.cell_budget,
                self.deadline,
                self.solutions,
                bar,
                kernel,
            )
            try:
                done = run_notebook(path, self.report_dir, self.stack, plan)
            except BaseException as exc:
                slot.status, slot.duration_s = "failed", time.monotonic() - began
                if not isinstance(exc, Exception):
                    raise
                # papermill's last call to a kernel that died (or an aborted run killed): the
                # cells' outputs are saved, the notebook failed, the run goes on to its report
                log.error("%s: %s: %s", label, type(exc).__name__, exc)
                done = slot
            finally:
                stop_kernel(kernel)
        log.info("%s", _progress_line(label, done))
        if done.failure is not None:
            log.error("%s", done.failure.text())
        return done


def execute_notebooks(
    notebooks: Sequence[Path],
    stack: Stack,
    report_dir: Path,
    *,
    cell_budget: float,
    run_budget: float,
    kernels: KernelPool | None = None,
    solutions: Mapping[str, str] | None = None,
    share: Share | None = None,
    language: str = SOURCE_LANGUAGE,
    ran: Callable[[int, report.NotebookResult], None] | None = None,
) -> report.RunResult:
    """Run `notebooks` in order against `stack`, stopping at the first failure.

    `solutions`: exercise id -> the solved cell run in its place; `share`: which part of a run
    these notebooks are (default: all of it); `language`: theirs (kernels of their own get it
    as LAB_LANG); `ran`: told each notebook's result (and its place in the run) once it ran.
    """
    result = report.RunResult(
        stack.target, [report.NotebookResult(p.stem) for p in notebooks], language=language
    )
    started = time.monotonic()
    report_dir.mkdir(parents=True, exist_ok=True)
    pool = kernels or KernelPool(
        notebooks, kernel_environ(stack.state_file, stack.target, language)
    )
    run = _Run(
        notebooks,
        stack,
        report_dir,
        cell_budget,
        started + run_budget,
        pool,
        solutions or {},
        share or Share(range(len(notebooks)), len(notebooks)),
    )
    stop = run.share.stop
    try:
        for number, slot in enumerate(result.notebooks):
            if time.monotonic() >= run.deadline:
                result.note = _("the whole-run budget ({seconds:.0f} s) was used up").format(
                    seconds=run_budget
                )
                break
            if stop.is_set():
                break
            result.notebooks[number] = run.notebook(number, slot)
            if ran is not None:
                ran(run.share.positions[number], result.notebooks[number])
            if result.notebooks[number].status == "failed":
                stop.set()
                break
    finally:
        pool.close()
        result.duration_s = time.monotonic() - started
    return result


def _progress_line(label: str, nb: report.NotebookResult) -> str:
    """The console's line for a finished notebook: its status and numbers (the report's)."""
    done = _("{mark} {label} {status} in {seconds:.1f} s").format(
        mark=report.STATUS_MARK[nb.status],
        label=label,
        status=report.status_label(nb.status),
        seconds=nb.duration_s,
    )
    return f"{done} — {', '.join(report.tally_phrases(nb.tally))}"
