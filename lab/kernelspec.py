"""The lab's Jupyter kernel spec: the `python3` kernel, loading `%%cluster` at start-up.

`ironclad-lab kernelspec` installs it into this environment (`sys.prefix`, what `jupyter
kernelspec install --sys-prefix` does), replacing ipykernel's own `python3` spec there, so the
notebooks' `python3` kernel has `%%cluster` before any `import lab`. Which spec wins: inside a
virtual environment jupyter_core searches the environment's share/jupyter/kernels *before* the
user's (~/.local/share/jupyter) and the system's (`jupyter --paths`), unless JUPYTER_PATH names
a directory first or JUPYTER_PREFER_ENV_PATH=0. The extension comes as a command-line `--ext`
(IPython's `extra_extensions`), which adds to whatever `extensions` an IPython profile configures
instead of being replaced by it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager

from lab import magics
from lab.contract import KERNEL

DISPLAY_NAME = "Python 3 (Ironclad Lab)"
EXTENSION_ARGUMENTS = [f"--ext={magics.__name__}"]  # what every lab kernel is started with


def install(prefix: Path | None = None) -> Path:
    """Install the spec under `prefix`/share/jupyter/kernels (default: this environment)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = write_kernel_spec(
            Path(tmp) / KERNEL,
            overrides={"display_name": DISPLAY_NAME},
            extra_arguments=EXTENSION_ARGUMENTS,
        )
        installed = KernelSpecManager().install_kernel_spec(
            source, KERNEL, prefix=str(prefix or sys.prefix)
        )
    return Path(installed)
