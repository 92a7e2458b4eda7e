"""The papermill engine "ironclad": needs-cluster skips, time budgets and readable failures."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from nbclient.exceptions import CellExecutionError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, papermill_engines
from traitlets import Any as AnyTrait

from lab.nb import SKIP_KEY, SKIP_MESSAGE, SKIP_TAG, new_output

ENGINE = "ironclad"
KERNEL_ARGUMENTS = [
    "--log-level=ERROR",  # no "running over TCP without encryption" warning on the terminal
    "--IPKernelApp.exec_lines=import pandas, matplotlib.pyplot",  # warm-up while booting
]


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
        return self.target == "local"  # kind and cluster both run needs-cluster cells

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
                    cell.outputs = [new_output("stream", name="stdout", text=skipped + "\n")]
                    cell.metadata[SKIP_KEY] = True
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
        return bool(cell.cell_type == "code" and SKIP_TAG in tags and self.plan.skip_cluster_cells)

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
