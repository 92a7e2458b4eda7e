"""One headless run: start the stack(s), run the notebooks, write the report while the stacks are
torn down.

Lanes (`lab.runner.lanes`): on the local target the notebooks may be shared out over several
stacks running side by side, one thread each; a kind or shared cluster is one stack, one lane.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.i18n import SOURCE_LANGUAGE, _, ngettext
from lab.identity import Identity
from lab.runner import lanes
from lab.runner.kernels import KernelPool, kernel_environ
from lab.settings import Settings
from lab.stack import StackProcess
from lab.targets import REASON_ENV, Choice, choose, spec

if TYPE_CHECKING:
    from lab.runner.report import NotebookResult, ReportWriter, RunResult

log = logging.getLogger(__name__)

# Called with a finished lane's summary.json and the identity of its Kubernetes lab (the
# command passes `lab.workshop.status.record_run`: a shared cluster's learner results).
RecordRun = Callable[[Mapping[str, Any], Identity], None]


class RunInterruptedError(BaseException):
    """SIGTERM/SIGHUP in the runner: unwinds like Ctrl-C so the stack is always torn down."""


@dataclass(frozen=True)
class RunOptions:
    """What `ironclad-lab run` was asked to do."""

    target: str
    notebooks: Sequence[Path]
    report_dir: Path
    cell_timeout: float | None = None
    timeout: float | None = None
    solutions: Mapping[str, str] | None = None  # exercise id -> solved cell (--solutions)
    lanes: int = 1  # local stacks side by side (`lab.runner.lanes`)
    language: str = SOURCE_LANGUAGE  # the notebooks' (`--lang`): the kernels and stacks get it


def discover(notebooks_dir: Path, selection: str | None) -> list[Path]:
    """The notebooks to run, in order; `selection` is "03,06" (prefixes) or full names."""
    found = sorted(notebooks_dir.glob("[0-9]*.ipynb"))
    if not selection:
        return found
    wanted = [part.strip() for part in selection.split(",") if part.strip()]
    unknown = [w for w in wanted if not any(_matches(p, w) for p in found)]
    if unknown:
        names = ", ".join(p.stem for p in found) or "none"
        raise LabError(
            _("No notebook matches {wanted}.").format(wanted=", ".join(unknown)),
            _("Pick from: {names}.").format(names=names),
        )
    return [p for p in found if any(_matches(p, w) for w in wanted)]


def _matches(path: Path, wanted: str) -> bool:
    return path.stem == wanted or path.stem.split("-", 1)[0] == wanted


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise RunInterruptedError(signal.Signals(signum).name)


def run_lab(options: RunOptions, settings: Settings, record_run: RecordRun | None = None) -> int:
    """Start the stack(s), run the notebooks, write the report; exit code 0 only when all passed.

    Each lane (one stack, its share of the notebooks) runs in a thread of its own, also when
    there is one. Each notebook's part of the report is rendered as soon as it ran
    (`report.ReportWriter`); once every lane has run its notebooks the report is written while
    their stacks are torn down, and this thread then waits for the teardowns. Ctrl-C, SIGTERM or
    SIGHUP at any point (the report included) aborts every lane: its kernels are killed and its
    stack torn down, and the report is written as interrupted (exit code 130); any other error
    here also waits for every stack to go before it propagates. Must run in the main thread
    (signal handlers). `record_run` gets each lane's summary once its notebooks ran on a
    Kubernetes lab.
    """
    report_dir = options.report_dir.resolve()
    clean(report_dir)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    choice, count = _lane_count(options, settings)
    planned = [lanes.planned(p) for p in options.notebooks]
    shares = lanes.plan(planned, count)
    # Each `lab up` is told the resolved target and why (its log then says "auto: ..." rather
    # than "requested", when nobody asked for that target), and speaks the run's language.
    environment = {**os.environ, REASON_ENV: choice.reason, "LAB_LANG": options.language}
    stacks = [
        StackProcess(
            choice.name,
            replace(settings, state_file_override=state),
            log_file,
            environment,
            planned[share[0]].lesson,  # its stack starts with what its first notebook expects
        )
        for share, (state, log_file) in zip(
            shares, (_lane_files(report_dir, row) for row in range(len(shares))), strict=True
        )
    ]
    stop, interrupted = threading.Event(), False
    every_lane = [
        _Lane(lanes.Share(positions, len(options.notebooks), row, stop), up, options, record_run)
        for row, (positions, up) in enumerate(zip(shares, stacks, strict=True))
    ]
    started: list[_Lane] = []
    writer: ReportWriter | None = None
    starting = ngettext(
        "Starting the lab: {reason}; {count} stack …",
        "Starting the lab: {reason}; {count} stacks …",
        len(stacks),
    )
    log.info("%s", starting.format(reason=choice.reason, count=len(stacks)))
    try:
        for up in stacks:
            up.spawn()
        for lane in every_lane:
            lane.kernels.prefetch(0, ahead=0)  # each lane's first kernel boots meanwhile
        from lab.runner import execute, report  # noqa: F401  papermill, nbconvert, pandas: seconds

        writer = report.ReportWriter(report_dir, _notebooks_dir(options))
        for lane in every_lane:
            lane.launch(writer.add)
            started.append(lane)
        for lane in started:
            lane.ran.wait()
        result, html_path = _report(options, report_dir, started, "", writer)  # while torn down
        for lane in started:
            lane.finished.wait()
    except BaseException as exc:  # an interrupt (or an error, the report's too): stacks down first
        stop.set()
        for lane in every_lane:
            lane.abort()
        for lane in started:
            lane.finished.wait()
        for lane in every_lane[len(started) :]:  # spawned, never started
            lane.kernels.close()
            lane.up.stop()
        if not isinstance(exc, (KeyboardInterrupt, RunInterruptedError)):
            raise
        note = _("interrupted ({reason})").format(reason=str(exc) or type(exc).__name__)
        interrupted = True
        result, html_path = _report(options, report_dir, started, note, writer)
    finally:
        if writer is not None:
            writer.close()
    from lab.runner.report import summary_table

    log.info("%s", summary_table(result, html_path))
    if interrupted:
        return 130
    return 0 if result.passed else 1


def _report(
    options: RunOptions,
    report_dir: Path,
    started: Sequence[_Lane],
    note: str,
    writer: ReportWriter | None,
) -> tuple[RunResult, Path]:
    """Merge the lanes' results and write the report: with `writer` (holding the notebooks
    rendered so far), else in one go; the result and the HTML path."""
    from lab.runner import report

    result = report.RunResult(
        options.target,
        [report.NotebookResult(p.stem) for p in options.notebooks],
        note=note,
        language=options.language,
    )
    for lane in started:
        lane.merge_into(result)
    if writer is None:
        return result, report.write_report(result, report_dir, _notebooks_dir(options))
    return result, writer.write(result)


def _notebooks_dir(options: RunOptions) -> Path | None:
    """Where the notebooks are (their relative links start there)."""
    return options.notebooks[0].parent if options.notebooks else None


def _lane_count(options: RunOptions, settings: Settings) -> tuple[Choice, int]:
    """The target to start (auto resolved here, once, with its reason) and how many stacks:
    only a target whose spec allows lanes (processes) runs more than one."""
    choice = choose(options.target, settings)
    if not spec(choice.name).lanes and options.lanes > 1:
        one = _("{lanes} lanes asked for, but {target} is one stack: running one.")
        log.info("%s", one.format(lanes=options.lanes, target=choice.name))
        return choice, 1
    return choice, options.lanes


def _lane_files(report_dir: Path, row: int) -> tuple[Path, Path]:
    """Lane `row`'s state file and `lab up` log (lane 0: lab-state.json and lab-up.log)."""
    suffix = "" if row == 0 else f"-{row + 1}"
    return report_dir / f"lab-state{suffix}.json", report_dir / f"lab-up{suffix}.log"


class _Lane(threading.Thread):
    """One spawned stack and its share of the notebooks, run in a thread; never raises, sets
    `ran` once its notebooks ran (its result is final), always stops the stack, then sets
    `finished`. (Wait on those, not on join(): before Python 3.13 a Ctrl-C during join() can mark
    the thread stopped while it still runs, gh-90882.)"""

    def __init__(
        self,
        share: lanes.Share,
        up: StackProcess,
        options: RunOptions,
        record_run: RecordRun | None = None,
    ) -> None:
        super().__init__(name=f"lane-{share.row + 1}", daemon=True)
        self.share, self.up, self.options, self.record_run = share, up, options, record_run
        self.notebooks = [options.notebooks[p] for p in share.positions]
        self.kernels = KernelPool(
            self.notebooks, kernel_environ(up.state_file, up.requested, options.language)
        )
        self.result: RunResult | None = None
        self.note = ""
        self.ran, self.finished = threading.Event(), threading.Event()
        self._notebook_ran: Callable[[int, NotebookResult], None] | None = None

    def launch(self, notebook_ran: Callable[[int, NotebookResult], None]) -> None:
        """Start the thread; `notebook_ran` is told each notebook's result (and its place in the
        run) as soon as it ran (the report renders it meanwhile)."""
        self._notebook_ran = notebook_ran
        self.start()

    def run(self) -> None:
        try:
            with self.kernels:
                self.up.wait_ready()
                self._run_share()
        except LabError as exc:
            self.note = _("the lab did not come up: {problem}").format(
                problem=exc.problem.splitlines()[0]
            )
            log.error("%s", _("error: {error}").format(error=exc))
            self.share.stop.set()
        except BaseException as exc:  # a thread's exception would be lost: record it
            self.note = f"{type(exc).__name__}: {exc}"
            log.exception("%s stopped", self.name)
            self.share.stop.set()
        finally:
            self.ran.set()
            self.up.stop()
            self.finished.set()

    def _run_share(self) -> None:
        from lab.runner.execute import LabUp, execute_notebooks

        if self.share.stop.is_set():
            return
        target = spec(self.up.target)
        ready = ngettext(
            "Lab ready on target={target}; running {count} notebook.",
            "Lab ready on target={target}; running {count} notebooks.",
            len(self.notebooks),
        )
        log.info("%s", ready.format(target=self.up.target, count=len(self.notebooks)))
        self.result = execute_notebooks(
            self.notebooks,
            LabUp(self.up),
            self.options.report_dir.resolve(),
            cell_budget=self.options.cell_timeout or target.cell_budget,
            run_budget=self.options.timeout or target.run_budget,
            kernels=self.kernels,
            solutions=self.options.solutions,
            share=self.share,
            language=self.options.language,
            ran=self._notebook_ran,
        )
        state = self.up.state
        if self.record_run is not None and state is not None and state.identity is not None:
            self.record_run(self.result.summary(), state.identity)
        log.info("%s", _("Tearing the lab down …"))

    def abort(self) -> None:
        """Stop now, from another thread: kill the kernels, ask `lab up` to tear down."""
        self.kernels.kill()
        if self.up.process is not None:
            self.up.process.signal(signal.SIGTERM)

    def merge_into(self, result: RunResult) -> None:
        """Put this lane's notebooks, duration and note into the whole run's `result`."""
        if self.result is not None:
            result.target = self.result.target  # what `auto` became
            for position, notebook in zip(self.share.positions, self.result.notebooks, strict=True):
                result.notebooks[position] = notebook
            result.duration_s = max(result.duration_s, self.result.duration_s)
        note = self.note or (self.result.note if self.result else "")
        if note and not result.note:
            result.note = note


def clean(report_dir: Path) -> None:
    """Remove the previous run's results so nothing stale is mistaken for this run."""
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in [
        *report_dir.glob("*.ipynb"),
        report_dir / "summary.json",
        report_dir / "index.html",
    ]:
        stale.unlink(missing_ok=True)
