"""nbformat helpers and the notebook conventions the runner, the report and `%%cluster` share.

nbformat carries no type hints: these are typed handles on the calls the lab makes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nbformat

read_notebook: Callable[..., Any] = nbformat.read
write_notebook: Callable[..., Any] = nbformat.write
new_notebook: Callable[..., Any] = nbformat.v4.new_notebook
new_markdown_cell: Callable[..., Any] = nbformat.v4.new_markdown_cell
new_raw_cell: Callable[..., Any] = nbformat.v4.new_raw_cell
new_output: Callable[..., Any] = nbformat.v4.new_output
notebook_from_dict: Callable[..., Any] = nbformat.from_dict
notebook_writes: Callable[..., str] = nbformat.writes

SKIP_TAG = "needs-cluster"  # cell tag: the cell needs a Kubernetes cluster
SKIP_KEY = "ironclad_skipped"  # cell metadata key the runner sets on a skipped cell
CLUSTER_MAGIC = "%%cluster"  # first line of a cell that needs a cluster (lab.magics)


def code_cells(nb: Any) -> int:
    """How many code cells `nb` has."""
    return sum(cell.cell_type == "code" for cell in nb.cells)


def split_cluster_magic(source: str) -> tuple[str, str]:
    """A cell's source as (the `%%cluster` line's arguments, the body); ("", source) without it."""
    first, _, body = source.partition("\n")
    words = first.split(maxsplit=1)
    if words[:1] == [CLUSTER_MAGIC]:
        return (words[1] if len(words) > 1 else ""), body
    return "", source
