"""Polling waits with a progress bar; on timeout they report the last error and diagnostics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lab.errors import LabError, LabTimeoutError
from lab.i18n import _, translate
from lab.progress import bar as progress_bar

T = TypeVar("T")


def poll(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    diagnose: Callable[[], str] | None = None,
    progress: bool = True,
    next_step: str = "",
) -> T:
    """Call `probe` until it returns something truthy and return that.

    Exceptions from `probe` count as "not yet" (the last one is reported on timeout), except
    LabError, which already says what to do and is raised at once. `diagnose` adds the state of
    the world to the timeout message (events, pod phases, log tails...). `what` is shown in the
    learner's language (`lab.i18n.translate`: a notebook's `what=` text).
    """
    what = translate(what)
    start = time.monotonic()
    last_error = ""
    total = round(timeout)
    with progress_bar(
        total=total,
        desc=what,
        unit="s",
        disable=not progress,
        leave=False,
        bar_format="{desc}: {elapsed} / {total}s {bar}",
    ) as bar:
        while True:
            try:
                result = probe()
            except LabError:
                raise
            except Exception as exc:  # any failure of the probe means "not yet"
                result = None
                last_error = f"{type(exc).__name__}: {exc}"
            if result:
                return result
            elapsed = time.monotonic() - start
            bar.update(min(round(elapsed), total) - bar.n)
            if elapsed >= timeout:
                details = [_("last error: {error}").format(error=last_error)] if last_error else []
                if diagnose is not None:
                    try:
                        details.append(diagnose())
                    except Exception as exc:  # keep the timeout as the error
                        details.append(_("(diagnostics failed: {error})").format(error=exc))
                raise LabTimeoutError(what, timeout, "\n".join(details), next_step)
            time.sleep(min(interval, max(timeout - elapsed, 0.0)))
