"""Ironclad Lab helper library: `lab.connect()`, `lab.check()`, `lab.shutdown()` and friends.

Importing `lab` is cheap: the public API below is loaded on first use. Inside IPython it also
registers the `%%cluster` cell magic.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# The public API: name -> the module that owns it (a module's own name means the module).
PUBLIC = {
    "connect": "lab.session",
    "shutdown": "lab.session",
    "Lab": "lab.session",
    "check": "lab.checks",
    "chaos": "lab.chaos",
    "errors": "lab.errors",
    "k8s": "lab.k8s",
    "lint": "lab.lint",
    "load": "lab.load",
    "manifests": "lab.manifests",
    "netpol": "lab.netpol",
    "plots": "lab.plots",
    "prom": "lab.prom",
    "settings": "lab.settings",
    "slo": "lab.slo",
    "waits": "lab.waits",
    "verify": "lab.exercises",
    "solution": "lab.exercises",
}

__all__ = sorted(PUBLIC)


def __getattr__(name: str) -> Any:
    """Load a name of the public API (`lab.connect`, `lab.prom`, ...) on first use."""
    owner = PUBLIC.get(name)
    if owner is None:
        raise AttributeError(f"module 'lab' has no attribute {name!r}")
    module = importlib.import_module(owner)
    return module if owner == f"lab.{name}" else getattr(module, name)


def _register_magics() -> None:
    if "IPython" not in sys.modules:  # not inside IPython: nothing to register
        return
    from IPython.core.getipython import get_ipython

    shell = get_ipython()
    if shell is not None:
        from lab.magics import register
        from lab.settings import get_settings

        register(shell, get_settings())


_register_magics()
