"""Progress bars: live in JupyterLab and on a terminal, one final line in headless runs.

Every bar the lab shows is made here. A kernel started by the headless runner has
LAB_HEADLESS=1 in its environment (the runner sets it explicitly): a widget or a
carriage-return bar would be frozen at its first frame in the executed notebook and the HTML
report (`0%| | 0/16200`), so there the bar counts silently and prints one line when it closes.
Anywhere else `tqdm.auto` draws it: a widget in JupyterLab, text on a terminal; and nothing
when the command line's stderr is not a terminal (a pipe, a log file, CI), where carriage-return
frames would only litter the log.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Protocol

from tqdm.auto import tqdm

from lab.i18n import _

__all__ = ["HEADLESS_ENV", "Bar", "FinalLine", "bar", "headless"]

# tqdm.auto picked its notebook bar (a widget) when it was imported in a Jupyter kernel.
IN_NOTEBOOK = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)

HEADLESS_ENV = "LAB_HEADLESS"


class Bar(Protocol):
    """What the lab uses of a bar (tqdm's API)."""

    n: float
    total: float | None
    desc: str
    disable: bool | None

    def update(self, n: float = 1) -> Any: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> Any: ...


def headless() -> bool:
    """True inside a kernel the headless runner started (LAB_HEADLESS=1)."""
    return os.environ.get(HEADLESS_ENV) == "1"


class FinalLine:
    """A bar for headless runs: counts like tqdm, draws nothing, prints one line on close."""

    def __init__(self, total: float | None, desc: str, unit: str) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n: float = 0
        self.disable: bool | None = True  # nothing is drawn
        self._started = time.monotonic()
        self._closed = False

    def update(self, n: float = 1) -> None:
        self.n += n

    def line(self) -> str:
        """The line `close()` prints, e.g. `load 50/s: 1500/1500 req in 30.1 s`."""
        done = f"{self.n:g}/{self.total:g}" if self.total is not None else f"{self.n:g}"
        return _("{desc}: {done} {unit} in {seconds} s").format(
            desc=self.desc,
            done=done,
            unit=self.unit,
            seconds=f"{time.monotonic() - self._started:.1f}",
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            print(self.line(), file=sys.stdout, flush=True)

    def __enter__(self) -> FinalLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(
    *, total: float | None, desc: str, unit: str, disable: bool | None = False, **tqdm_options: Any
) -> Bar:
    """A progress bar (use it as a context manager): tqdm.auto's, or a FinalLine when headless.

    `disable=True` shows nothing at all; `disable=None` lets tqdm hide the bar off a terminal,
    which is what `False` means outside a notebook too (a notebook's widget has no terminal).
    """
    if headless() and disable is False:
        return FinalLine(total, desc, unit)
    if disable is False and not IN_NOTEBOOK:
        disable = None
    live: Bar = tqdm(total=total, desc=desc, unit=unit, disable=disable, **tqdm_options)
    return live
