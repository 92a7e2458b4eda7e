"""Kernels started ahead of the notebooks that use them, so start-up overlaps other work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from lab.runner.engine import KERNEL_ARGUMENTS

KERNELS_AHEAD = 2  # kernels booting for the next notebooks while one runs


class KernelPool:
    """Kernels for `notebooks`, `ahead` of the one running; `close()` stops those not taken.

    Every kernel gets `env` as its whole environment (None: this process's environment), e.g.
    with LAB_STATE_FILE naming the stack the notebooks attach to.
    """

    def __init__(
        self,
        notebooks: Sequence[Path],
        env: Mapping[str, str] | None = None,
        ahead: int = KERNELS_AHEAD,
    ) -> None:
        self.notebooks = list(notebooks)
        self.env = dict(env) if env is not None else None
        self.ahead = ahead
        self.started: dict[int, Any] = {}  # notebook index -> AsyncKernelManager

    def prefetch(self, index: int) -> None:
        """Start the kernels of notebooks index .. index + ahead that are not started yet."""
        for number in range(index, min(index + self.ahead + 1, len(self.notebooks))):
            if number not in self.started:
                manager = AsyncKernelManager(kernel_name="python3")
                options: dict[str, Any] = {"cwd": str(self.notebooks[number].parent)}
                if self.env is not None:
                    options["env"] = self.env
                run_sync(manager.start_kernel)(extra_arguments=KERNEL_ARGUMENTS, **options)
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
