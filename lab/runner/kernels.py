"""Kernels started ahead of the notebooks that use them, so start-up overlaps other work."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from lab.contract import KERNEL
from lab.i18n import SOURCE_LANGUAGE
from lab.kernelspec import EXTENSION_ARGUMENTS
from lab.progress import HEADLESS_ENV

KERNELS_AHEAD = 2  # kernels booting for the next notebooks while one runs
# How the runner talks to its kernels: Unix sockets where there are some. Over TCP jupyter_client
# picks five free ports and the kernel binds them a second later, while the lessons' load opens
# thousands of outgoing connections whose ports come from the same ephemeral range: a kernel
# then failed with "Address already in use" (ZMQError) now and then. Unix sockets have no ports.
KERNEL_TRANSPORT = "ipc" if os.name == "posix" else "tcp"
KERNEL_ARGUMENTS = [
    "--log-level=ERROR",  # no "running without encryption" warning on the terminal
    "--IPKernelApp.exec_lines=import pandas, matplotlib.pyplot",  # warm-up while booting
    *EXTENSION_ARGUMENTS,  # %%cluster before `import lab`, as in JupyterLab
]


def kernel_environ(
    state_file: Path, target: str, language: str = SOURCE_LANGUAGE
) -> dict[str, str]:
    """The kernels' environment: this process's, with LAB_STATE_FILE naming the run's stack,
    LAB_TARGET the target the run asked for (what `%%cluster` reads while the stack has no
    state file), LAB_LANG the run's language (what `lab` says in the notebooks of that
    language) and LAB_HEADLESS=1 (progress bars print one final line instead of a frozen
    widget)."""
    return {
        **os.environ,
        "LAB_STATE_FILE": str(state_file),
        "LAB_TARGET": target,
        "LAB_LANG": language,
        HEADLESS_ENV: "1",
    }


class KernelPool:
    """Kernels for `notebooks`, `ahead` of the one running; `close()` stops those not taken.

    Every kernel gets `environ` as its whole environment (None: this process's), e.g.
    with LAB_STATE_FILE naming the stack the notebooks attach to.
    """

    def __init__(
        self,
        notebooks: Sequence[Path],
        environ: Mapping[str, str] | None = None,
        ahead: int = KERNELS_AHEAD,
    ) -> None:
        self.notebooks = list(notebooks)
        self.environ = dict(environ) if environ is not None else None
        self.ahead = ahead
        self.started: dict[int, Any] = {}  # notebook index -> AsyncKernelManager
        self.every: list[Any] = []  # all it started, taken or not (for `kill`)
        # Each kernel's sockets under a name of its own (ipc: "<ip>-<n>" files; the default ip,
        # "kernel-ipc" in the working directory, would be shared by every kernel there), in a
        # short path (a Unix socket's path has at most 107 bytes), removed with the pool.
        self.sockets = Path(tempfile.mkdtemp(prefix="ironclad-kernels-"))

    def prefetch(self, index: int, ahead: int | None = None) -> None:
        """Start the kernels of notebooks index .. index + ahead (default: the pool's) that are
        not started yet."""
        ahead = self.ahead if ahead is None else ahead
        for number in range(index, min(index + ahead + 1, len(self.notebooks))):
            if number not in self.started:
                manager = AsyncKernelManager(kernel_name=KERNEL, transport=KERNEL_TRANSPORT)
                if KERNEL_TRANSPORT == "ipc":
                    manager.ip = str(self.sockets / f"k{len(self.every)}")
                options: dict[str, Any] = {"cwd": str(self.notebooks[number].parent)}
                if self.environ is not None:
                    options["env"] = self.environ
                run_sync(manager.start_kernel)(extra_arguments=KERNEL_ARGUMENTS, **options)
                self.started[number] = manager
                self.every.append(manager)

    def take(self, index: int) -> Any:
        """The kernel for notebook `index` (the caller stops it), prefetching the next ones."""
        self.prefetch(index)
        return self.started.pop(index)

    def close(self) -> None:
        """Stop the kernels not taken; remove the sockets' folder (a killed kernel's too)."""
        while self.started:
            stop_kernel(self.started.popitem()[1])
        shutil.rmtree(self.sockets, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL every kernel this pool started, the running one included; safe from another
        thread (a notebook running on a killed kernel fails with DeadKernelError)."""
        for manager in list(self.every):
            if (process := kernel_process(manager)) is not None:
                process.kill()

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_kernel(manager: Any) -> None:
    """Shut a kernel down now (no-op when it already stopped)."""
    if run_sync(manager.is_alive)():
        kill_quietly(manager)
        run_sync(manager.shutdown_kernel)(now=True)  # connection files, ports, channels


def kernel_process(manager: Any) -> Any:
    """The kernel's Popen (None before it started): a Popen, so no pid reuse can mislead."""
    return getattr(manager.provisioner, "process", None)


def kill_quietly(manager: Any) -> None:
    """SIGKILL the kernel's process and reap it. jupyter_client's own shutdown interrupts a
    kernel first, and a kernel still handling a message logs that SIGINT as "ERROR |
    KeyboardInterrupt caught in kernel" on a run where everything passed."""
    process = kernel_process(manager)
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()
