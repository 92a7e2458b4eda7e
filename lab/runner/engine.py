"""The papermill engine "ironclad": needs-cluster cells explained, solutions injected, time
budgets and readable failures."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, papermill_engines
from traitlets import Any as AnyTrait
from traitlets import Bool

from lab.i18n import N_, _
from lab.magics import EXPLAIN_FLAG
from lab.nb import CLUSTER_MAGIC, SKIP_KEY, SKIP_TAG, new_output, split_cluster_magic
from lab.runner.kernels import KERNEL_ARGUMENTS, kill_quietly
from lab.runner.solutions import exercise_id
from lab.targets import spec

ENGINE = "ironclad"
# Cell metadata key: the seconds after which the cell was stopped for its time budget.
TIMED_OUT_KEY = "ironclad_timed_out_after_s"
# What the failing cell's error says when it ran out of time: (budget, stopped) -> message.
OUT_OF_TIME = {
    ("per-cell", True): N_(
        "the cell ran longer than its per-cell time budget ({seconds} s) and was interrupted"
    ),
    ("whole-run", True): N_(
        "the cell ran longer than its whole-run time budget ({seconds} s) and was interrupted"
    ),
    ("per-cell", False): N_(
        "the cell ran longer than its per-cell time budget ({seconds} s), was interrupted and "
        "did not stop within {more} s more"
    ),
    ("whole-run", False): N_(
        "the cell ran longer than its whole-run time budget ({seconds} s), was interrupted and "
        "did not stop within {more} s more"
    ),
}


@dataclass
class CellPlan:
    """How the cells of one notebook run: which to skip (and explain), which exercises get
    their solution, time budgets, progress."""

    target: str
    cell_budget: float
    deadline: float  # time.monotonic() when the whole-run budget ends
    solutions: Mapping[str, str] = field(default_factory=dict)  # exercise id -> solved cell
    progress: Any = None
    kernel: Any = None  # a kernel started ahead of time (AsyncKernelManager), or None

    @property
    def skip_cluster_cells(self) -> bool:
        return not spec(self.target).has_cluster

    def budget(self) -> tuple[float, str]:
        """Seconds the next cell may take, and which budget that is."""
        left = self.deadline - time.monotonic()
        if left < self.cell_budget:
            return left, "whole-run"
        return self.cell_budget, "per-cell"


class _Client(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client, with needs-cluster skips, time budgets and readable failures."""

    plan = AnyTrait()
    stuck = Bool(False)  # a cell timed out and went on after the interrupt: the kernel is busy

    def execute(self, **kwargs: Any) -> Any:
        """papermill's `execute`, except that a stuck kernel is not asked for its language
        (it would never answer, and papermill would fail on the missing reply)."""
        self.reset_execution_trackers()
        with self.setup_kernel(**kwargs):
            self.papermill_execute_cells()
            if not self.stuck:
                info = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info["content"]["language_info"]
            self.set_widgets_metadata()
        return self.nb

    def papermill_execute_cells(self) -> None:
        for index, cell in enumerate(self.nb.cells):
            self.nb_man.cell_start(cell, index)
            try:
                solution = self.plan.solutions.get(exercise_id(cell) or "")
                if solution is not None:
                    cell.source = solution
                if self._skips(cell):
                    self._explain(cell, index)
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

    async def _async_cleanup_kernel(self) -> None:
        """nbclient's cleanup, the kernel killed first (`kill_quietly` says why)."""
        if self.km is not None:
            kill_quietly(self.km)
        await super()._async_cleanup_kernel()

    # nbclient binds its sync twin to its own coroutine when its class is made, and papermill's
    # `execute` cleans up through that twin (`setup_kernel`): without this line the override
    # above never ran there, and jupyter_client's shutdown SIGINTed a busy kernel (issue 22).
    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    def _skips(self, cell: Any) -> bool:
        tags = cell.metadata.get("tags", [])
        return bool(cell.cell_type == "code" and SKIP_TAG in tags and self.plan.skip_cluster_cells)

    def _explain(self, cell: Any, index: int) -> None:
        """Run a needs-cluster cell as `%%cluster --explain`: the kernel explains it (its
        variables fill the checks' fields; each object is shown once) and runs none of it."""
        original = cell.source
        line, body = split_cluster_magic(original)
        cell.source = f"{CLUSTER_MAGIC} {EXPLAIN_FLAG} {line}".rstrip() + f"\n{body}"
        try:
            self._execute(cell, index)
        finally:
            cell.source = original
            cell.metadata[SKIP_KEY] = True

    def _execute(self, cell: Any, index: int) -> None:
        seconds, which = self.plan.budget()
        if seconds <= 0:
            raise CellExecutionError(
                "", "RunBudgetExceeded", _("the whole-run time budget was used up before this cell")
            )
        self.timeout = math.ceil(seconds)
        self.interrupt_on_timeout = True
        self.error_on_timeout = {
            "ename": "CellTimeoutError",
            "evalue": _(OUT_OF_TIME[which, True]).format(seconds=self.timeout),
            "traceback": [],
        }
        try:
            self.execute_cell(cell, index)
        except CellTimeoutError as exc:  # interrupted, it went on: nbclient gave up waiting
            cell.metadata[TIMED_OUT_KEY] = self.timeout
            self.stuck = True
            raise CellExecutionError(
                str(exc),
                "CellTimeoutError",
                _(OUT_OF_TIME[which, False]).format(seconds=self.timeout, more=self.iopub_timeout),
            ) from exc
        except CellExecutionError as exc:
            if exc.ename == "CellTimeoutError":
                cell.metadata[TIMED_OUT_KEY] = self.timeout
            raise


def _record_error(cell: Any, exc: Exception) -> None:
    """Make sure the failing cell shows an error output naming the cause."""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    if isinstance(exc, DeadKernelError):
        evalue = _("the kernel died (out of memory, or a crash in native code)")
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    if ename == "CellTimeoutError" and errors:
        errors[-1].ename, errors[-1].evalue = ename, evalue  # the interrupt's traceback: where
    elif not any(o.ename == ename for o in errors):
        cell.setdefault("outputs", []).append(
            new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
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
