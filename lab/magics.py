"""The `%%cluster` cell magic: runs the cell on a cluster target, skips it (one line) on local."""

from __future__ import annotations

from typing import Any

from lab.nb import SKIP_MESSAGE
from lab.settings import Settings
from lab.stack import read_state


def current_target(settings: Settings) -> str | None:
    """The target of the running lab (state file), else an explicit LAB_TARGET, else None."""
    state = read_state(settings.state_file)
    if state is not None:
        return state.endpoints.target
    return None if settings.target == "auto" else settings.target


def cluster(cell: str, shell: Any, settings: Settings) -> str | None:
    """Run `cell` in `shell` unless the lab runs locally; return the skip message if skipped."""
    target = current_target(settings)
    if target == "local":
        return SKIP_MESSAGE.format(target=target)
    result = shell.run_cell(cell, store_history=False)
    result.raise_error()  # a failing cell must fail the outer cell (the headless runner sees it)
    return None


def register(shell: Any, settings: Settings) -> None:
    """Register `%%cluster` in an IPython shell."""

    def cluster_magic(line: str, cell: str) -> None:
        skipped = cluster(cell, shell, settings)
        if skipped:
            print(skipped)  # the learner's one-line notice in the cell's output

    shell.register_magic_function(cluster_magic, magic_kind="cell", magic_name="cluster")
