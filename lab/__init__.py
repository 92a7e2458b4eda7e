"""Ironclad Lab helper library: `lab.connect()`, `lab.check()`, `lab.shutdown()` and friends.

Importing `lab` is cheap: everything is loaded on first use. Inside IPython it also registers
the `%%cluster` cell magic.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

_EXPORTS = {
    "connect": "lab.session",
    "shutdown": "lab.session",
    "Lab": "lab.session",
    "check": "lab.checks",
}

__all__ = ["Lab", "check", "connect", "shutdown"]


def __getattr__(name: str) -> Any:
    """Load `lab.connect`, `lab.check`, ... (and submodules such as `lab.prom`) on first use."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    try:
        return importlib.import_module(f"lab.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"lab.{name}":
            raise
        raise AttributeError(f"module 'lab' has no attribute {name!r}") from None


def _register_magics() -> None:
    if "IPython" not in sys.modules:  # not inside IPython: nothing to register
        return
    from IPython.core.getipython import get_ipython

    shell = get_ipython()  # type: ignore[no-untyped-call]
    if shell is not None:
        from lab.magics import register

        register(shell)


_register_magics()
