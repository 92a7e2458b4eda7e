"""The `%%cluster` cell magic: runs the cell on a cluster target, skips it (one line) on local."""

from __future__ import annotations

from typing import Any

from lab.settings import get_settings

SKIP_MESSAGE = "skipped: needs a Kubernetes cluster (target={target})"


def current_target() -> str | None:
    """The target of the running lab (state file), else an explicit LAB_TARGET, else None."""
    from lab.session import read_state

    state = read_state(get_settings().state_file)
    if state is not None:
        return state.endpoints.target
    explicit = get_settings().target
    return None if explicit == "auto" else explicit


def cluster(line: str, cell: str, shell: Any) -> str | None:
    """Run `cell` in `shell` unless the lab runs locally; return the skip message if skipped."""
    target = current_target()
    if target == "local":
        return SKIP_MESSAGE.format(target=target)
    result = shell.run_cell(cell, store_history=False)
    result.raise_error()  # a failing cell must fail the outer cell (the headless runner sees it)
    return None


def register(shell: Any) -> None:
    """Register `%%cluster` in an IPython shell."""

    def cluster_magic(line: str, cell: str) -> None:
        skipped = cluster(line, cell, shell)
        if skipped:
            print(skipped)

    shell.register_magic_function(cluster_magic, magic_kind="cell", magic_name="cluster")
