"""`python -m lab run`: execute the notebooks headless against one stack and write the report.

One target for the whole run: `python -m lab up --json` is started once before the first notebook
(its state file reaches every kernel through LAB_STATE_FILE) and stopped afterwards, always.
Notebooks run through papermill with their `parameters` cell overridden (target, namespace and the
shortened timings each notebook declares in its metadata under `ironclad.headless_parameters`).
Cells tagged `needs-cluster` are skipped, and counted, on the local target. Kernels are started
two notebooks ahead, so their start-up overlaps the previous notebook. The run stops at the first
failing cell; its source, traceback and the stack's diagnostics go into the executed notebook and
onto the terminal. Results land in `build/lab-report/` (see `lab.report`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import papermill
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellExecutionError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from tqdm.auto import tqdm
from traitlets import Any as AnyTrait

from lab import report
from lab.errors import LabError
from lab.magics import SKIP_MESSAGE
from lab.procs import ManagedProcess, wait_until
from lab.prom import Prom
from lab.settings import find_repo_root, get_settings

ENGINE = "ironclad"
KERNEL_ARGUMENTS = [
    "--log-level=ERROR",  # no "running over TCP without encryption" warning on the terminal
    "--IPKernelApp.exec_lines=import pandas, matplotlib.pyplot",  # warm-up while booting
]
KERNELS_AHEAD = 2  # kernels booting for the next notebooks while one runs
TARGETS = ("auto", "kind", "local")
DEFAULT_BUDGETS = {"local": (300.0, 1200.0), "kind": (900.0, 5400.0)}  # (per cell, whole run)
UP_TIMEOUT = {"local": 180.0, "kind": 1800.0, "auto": 1800.0}


class RunInterruptedError(BaseException):
    """SIGTERM/SIGHUP in the runner: unwinds like Ctrl-C so the stack is always torn down."""


class Stack(Protocol):
    """The running lab the notebooks talk to."""

    target: str
    namespace: str
    state_file: Path

    def diagnostics(self) -> str: ...


# ───────────────────────────── the stack: `python -m lab up --json` ─────────────────────────────


@dataclass
class UpProcess:
    """`python -m lab up --target T --json` as a child process, from ready to torn down."""

    requested: str
    state_file: Path
    log_path: Path
    timeout: float
    target: str = ""
    namespace: str = "ironclad-demo"
    endpoints: dict[str, Any] = field(default_factory=dict)
    process: ManagedProcess | None = None

    def __enter__(self) -> UpProcess:
        self.log_path.unlink(missing_ok=True)
        self.process = ManagedProcess(
            "python -m lab up",
            [
                sys.executable,
                "-m",
                "lab",
                "up",
                "--target",
                self.requested,
                "--json",
                "--state-file",
                str(self.state_file),
            ],
            self.log_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ).start()
        try:
            wait_until(
                self._ready,
                timeout=self.timeout,
                interval=0.2,
                what=f"`python -m lab up --target {self.requested}` to be ready",
                on_timeout=lambda: self.process.log_tail(20) if self.process else "",
            )
        except BaseException:
            self.process.stop(timeout=60)
            raise
        self.target = str(self.endpoints["target"])
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.namespace = str(json.loads(self.state_file.read_text())["namespace"])
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        for line in self.process.log_tail(200).splitlines():
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if isinstance(data, dict) and "target" in data and self.state_file.exists():
                    self.endpoints = data
                    return True
        self.process.ensure_running()
        return False

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            # kind teardown waits up to the rollout timeout for the namespace to go
            self.process.stop(timeout=get_settings().rollout_timeout + 60)

    def diagnostics(self) -> str:
        """The stack's state right now: lab up, backends, Prometheus targets/alerts, pods."""
        lines: list[str] = []
        running = self.process is not None and self.process.running()
        lines.append(f"lab up (target={self.target}): {'running' if running else 'NOT running'}")
        for url in self.endpoints.get("backends", []):
            lines.append(f"backend {url}/health/ready → {_http_status(url + '/health/ready')}")
        prometheus = self.endpoints.get("prometheus")
        if prometheus:
            lines += _prometheus_state(prometheus)
        if self.target == "kind":
            lines.append(_cluster_diagnosis(self.namespace))
        if self.process is not None:
            lines += ["last lines of the lab up log:", self.process.log_tail(15)]
        return "\n".join(lines)


def _http_status(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URLs
            return str(response.status)
    except OSError as exc:
        return f"unreachable ({exc})"


def _prometheus_state(url: str) -> list[str]:
    prom = Prom(url, timeout=2)
    try:
        targets, alerts = prom.targets(), prom.alerts()
    except LabError as exc:
        return [f"prometheus {url}: unreachable ({exc.problem})"]
    lines = [
        f"prometheus target {t.scrape_url}: {t.health} {t.last_error}" for t in targets.itertuples()
    ]
    alert_lines = [f"alert {a.alertname}: {a.state}" for a in alerts.itertuples()]
    return lines + (alert_lines or ["no alerts"])


def _cluster_diagnosis(namespace: str) -> str:
    """Pods, recent events and logs of unready pods (lab.k8s); never hides the original failure."""
    from lab.k8s import Cluster

    try:
        cluster = Cluster.connect(namespace, context=f"kind-{get_settings().cluster_name}")
        return cluster.diagnose()
    except Exception as exc:  # diagnostics are best effort: the notebook's error comes first
        return f"cluster diagnostics unavailable: {type(exc).__name__}: {exc}"


# ───────────────────────────── the papermill engine ─────────────────────────────


@dataclass
class CellPlan:
    """How the cells of one notebook run: which to skip, time budgets, progress."""

    target: str
    cell_budget: float
    deadline: float  # time.monotonic() when the whole-run budget ends
    progress: Any = None
    kernel: Any = None  # a kernel started ahead of time (AsyncKernelManager), or None

    @property
    def skip_cluster_cells(self) -> bool:
        return self.target != "kind"

    def budget(self) -> tuple[float, str]:
        """Seconds the next cell may take, and which budget that is."""
        left = self.deadline - time.monotonic()
        if left < self.cell_budget:
            return left, "whole-run"
        return self.cell_budget, "per-cell"


class _Client(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client, with needs-cluster skips, time budgets and readable failures."""

    plan = AnyTrait()

    def papermill_execute_cells(self) -> None:
        for index, cell in enumerate(self.nb.cells):
            self.nb_man.cell_start(cell, index)
            try:
                if self._skips(cell):
                    skipped = SKIP_MESSAGE.format(target=self.plan.target)
                    cell.outputs = [report.new_output("stream", name="stdout", text=skipped + "\n")]
                    cell.metadata[report.SKIP_KEY] = True
                else:
                    self._execute(cell, index)
            except (CellExecutionError, DeadKernelError) as exc:
                _record_error(cell, exc)
                self.nb_man.cell_exception(cell, cell_index=index)
                break
            finally:
                self.nb_man.cell_complete(cell, cell_index=index)
                if cell.cell_type == "code" and self.plan.progress is not None:
                    self.plan.progress.update(1)

    def _skips(self, cell: Any) -> bool:
        tags = cell.metadata.get("tags", [])
        return bool(
            cell.cell_type == "code" and report.SKIP_TAG in tags and self.plan.skip_cluster_cells
        )

    def _execute(self, cell: Any, index: int) -> None:
        seconds, which = self.plan.budget()
        if seconds <= 0:
            raise CellExecutionError(
                "", "RunBudgetExceeded", "the whole-run time budget was used up before this cell"
            )
        self.timeout = math.ceil(seconds)
        self.interrupt_on_timeout = True
        self.error_on_timeout = {
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than its {which} time budget ({self.timeout} s) "
            "and was interrupted",
            "traceback": [],
        }
        self.execute_cell(cell, index)


def _record_error(cell: Any, exc: Exception) -> None:
    """Make sure the failing cell shows an error output naming the cause."""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    if isinstance(exc, DeadKernelError):
        evalue = "the kernel died (out of memory, or a crash in native code)"
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    if ename == "CellTimeoutError" and errors:
        errors[-1].ename, errors[-1].evalue = ename, evalue  # the interrupt's traceback: where
    elif not any(o.ename == ename for o in errors):
        cell.setdefault("outputs", []).append(
            report.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
        )


class IroncladEngine(Engine):  # type: ignore[misc]
    """papermill engine running `_Client` (registered as "ironclad")."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        *,
        plan: CellPlan,
        start_timeout: int = 60,
        **_papermill_options: Any,
    ) -> Any:
        client = _Client(
            nb_man,
            km=plan.kernel,
            kernel_name=kernel_name,
            startup_timeout=start_timeout,
            plan=plan,
            extra_arguments=KERNEL_ARGUMENTS,
        )
        client.owns_km = True  # shut the kernel down afterwards, even a prefetched one
        return client.execute()


papermill_engines.register(ENGINE, IroncladEngine)


# ───────────────────────────── running notebooks ─────────────────────────────


def headless_parameters(path: Path, stack: Stack) -> dict[str, Any]:
    """The parameters papermill injects: target, namespace, the notebook's shortened timings."""
    nb = report.read_notebook(path, as_version=4)
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
            result.tally = report.tally_notebook(report.read_notebook(output, as_version=4))
    return result


def _add_diagnostics(output: Path, failure: report.Failure) -> None:
    nb = report.read_notebook(output, as_version=4)
    failed = next(
        i for i, cell in enumerate(nb.cells) if cell.metadata.get("papermill", {}).get("exception")
    )
    text = (
        f"### Diagnostics collected by `python -m lab run` after this failure\n\n"
        f"```text\n{failure.diagnostics}\n```"
    )
    cell = report.new_markdown_cell(text)
    cell.metadata["tags"] = ["ironclad-diagnostics"]
    nb.cells.insert(failed + 1, cell)
    report.write_notebook(nb, output)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables (inherited by the kernels) for the duration of the block."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


class KernelPool:
    """Kernels started ahead of the notebooks that use them, so start-up overlaps other work.

    Kernels inherit the environment of the moment they start: start them inside the
    LAB_STATE_FILE environment. `close()` stops every kernel not handed out.
    """

    def __init__(self, notebooks: Sequence[Path], ahead: int = KERNELS_AHEAD) -> None:
        self.notebooks = list(notebooks)
        self.ahead = ahead
        self.started: dict[int, Any] = {}  # notebook index -> AsyncKernelManager

    def prefetch(self, index: int) -> None:
        """Start the kernels of notebooks index .. index + ahead that are not started yet."""
        for number in range(index, min(index + self.ahead + 1, len(self.notebooks))):
            if number not in self.started:
                manager = AsyncKernelManager(kernel_name="python3")
                cwd = str(self.notebooks[number].parent)
                run_sync(manager.start_kernel)(extra_arguments=KERNEL_ARGUMENTS, cwd=cwd)
                self.started[number] = manager

    def take(self, index: int) -> Any:
        """The kernel for notebook `index` (the caller stops it), prefetching the next ones."""
        self.prefetch(index)
        return self.started.pop(index)

    def close(self) -> None:
        while self.started:
            stop_kernel(self.started.popitem()[1])

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_kernel(manager: Any) -> None:
    """Shut a kernel down now (no-op when it already stopped)."""
    if run_sync(manager.is_alive)():
        run_sync(manager.shutdown_kernel)(now=True)


def run_notebooks(
    notebooks: Sequence[Path],
    stack: Stack,
    report_dir: Path,
    *,
    cell_budget: float,
    run_budget: float,
    kernels: KernelPool | None = None,
) -> report.RunResult:
    """Run `notebooks` in order against `stack`, stopping at the first failure."""
    result = report.RunResult(stack.target, [report.NotebookResult(p.stem) for p in notebooks])
    started = time.monotonic()
    deadline = started + run_budget
    report_dir.mkdir(parents=True, exist_ok=True)
    pool = kernels or KernelPool(notebooks)
    try:
        with _environment(LAB_STATE_FILE=str(stack.state_file)):
            for number, (path, slot) in enumerate(zip(notebooks, result.notebooks, strict=True)):
                if time.monotonic() >= deadline:
                    result.note = f"the whole-run budget ({run_budget:.0f} s) was used up"
                    break
                kernel = pool.take(number)
                code_cells = sum(
                    c.cell_type == "code" for c in report.read_notebook(path, as_version=4).cells
                )
                label = f"[{number + 1}/{len(notebooks)}] {path.stem}"
                began = time.monotonic()
                with tqdm(
                    total=code_cells + 1,
                    desc=label,
                    unit="cell",
                    leave=False,
                    file=sys.stderr,
                    disable=None,
                ) as bar:
                    if bar.disable:  # no terminal to draw a bar on (CI logs): one line instead
                        print(f"▶ {label} ({code_cells} code cells) …", file=sys.stderr, flush=True)
                    plan = CellPlan(stack.target, cell_budget, deadline, bar, kernel)
                    try:
                        done = run_notebook(path, report_dir, stack, plan)
                    except BaseException:
                        slot.status = "failed"
                        slot.duration_s = time.monotonic() - began
                        raise
                    finally:
                        stop_kernel(kernel)
                result.notebooks[number] = done
                print(_progress_line(label, done), file=sys.stderr, flush=True)
                if done.failure is not None:
                    print(done.failure.text(), file=sys.stderr, flush=True)
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
        f"{len(nb.tally.checks)} checks passed"
    )


# ───────────────────────────── command line ─────────────────────────────


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


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m lab run", description=__doc__.split("\n")[0])
    cli.add_argument(
        "--target",
        choices=TARGETS,
        default="auto",
        help="the one target for the whole run (default: auto)",
    )
    cli.add_argument(
        "--notebooks",
        default=None,
        metavar="03,06",
        help="comma-separated notebook numbers or names (default: all)",
    )
    root = find_repo_root()
    cli.add_argument(
        "--notebooks-dir",
        type=Path,
        default=root / "notebooks",
        help="where the NN-name.ipynb notebooks are (default: notebooks/)",
    )
    cli.add_argument(
        "--report-dir",
        type=Path,
        default=root / "build" / "lab-report",
        help="where the executed notebooks and the report go (default: build/lab-report/)",
    )
    cli.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        help="per-cell time budget in s (default: 300 local, 900 kind)",
    )
    cli.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="whole-run time budget in s (default: 1200 local, 5400 kind)",
    )
    return cli


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise RunInterruptedError(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the notebooks; exit code 0 only when every selected notebook passed."""
    args = parser().parse_args(argv)
    try:
        notebooks = discover(args.notebooks_dir, args.notebooks)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not notebooks:
        print(
            f"No notebooks to run: {args.notebooks_dir} holds no NN-name.ipynb files.",
            file=sys.stderr,
        )
        return 2
    report_dir: Path = args.report_dir.resolve()
    _clean(report_dir)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    up = UpProcess(
        args.target,
        report_dir / "lab-state.json",
        report_dir / "lab-up.log",
        UP_TIMEOUT[args.target],
    )
    print(f"Starting the lab (target={args.target}) …", file=sys.stderr, flush=True)
    result = report.RunResult(args.target, [report.NotebookResult(p.stem) for p in notebooks])
    try:
        with _environment(LAB_STATE_FILE=str(up.state_file)), KernelPool(notebooks) as kernels:
            kernels.prefetch(0)  # the first kernels boot while the lab comes up
            with up:
                cell_default, run_default = DEFAULT_BUDGETS[up.target]
                print(
                    f"Lab ready on target={up.target}; running {len(notebooks)} notebooks.",
                    file=sys.stderr,
                    flush=True,
                )
                result = run_notebooks(
                    notebooks,
                    up,
                    report_dir,
                    cell_budget=args.cell_timeout or cell_default,
                    run_budget=args.timeout or run_default,
                    kernels=kernels,
                )
                print("Tearing the lab down …", file=sys.stderr, flush=True)
    except LabError as exc:
        result.note = f"the lab did not come up: {exc.problem.splitlines()[0]}"
        print(f"error: {exc}", file=sys.stderr)
    except (KeyboardInterrupt, RunInterruptedError):
        result.note = "interrupted while the lab was starting or stopping"
    html_path = report.write_report(result, report_dir)
    print(report.summary_table(result, html_path))
    if result.note.startswith("interrupted"):
        return 130
    return 0 if result.passed else 1


def _clean(report_dir: Path) -> None:
    """Remove the previous run's results so nothing stale is mistaken for this run."""
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in [
        *report_dir.glob("*.ipynb"),
        report_dir / "summary.json",
        report_dir / "index.html",
    ]:
        stale.unlink(missing_ok=True)
