"""Issue 13.6: no plumbing copied between notebooks — shared code belongs in `lab`.

Two notebooks sharing a code cell of MIN_LINES or more (the same code once whitespace is
normalised: indentation, spacing and blank lines do not count) fail with both places named.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
MIN_LINES = 8


def normalised(source: str) -> tuple[str, ...]:
    """The cell's non-blank lines, each with runs of whitespace collapsed to one space."""
    lines = (re.sub(r"\s+", " ", line).strip() for line in source.splitlines())
    return tuple(line for line in lines if line)


def long_cells(path: Path) -> dict[tuple[str, ...], int]:
    """Normalised code cells of MIN_LINES or more -> their index among the notebook's cells."""
    nb = nbformat.read(path, as_version=4)
    cells = {}
    for index, cell in enumerate(nb.cells):
        lines = normalised(cell.source) if cell.cell_type == "code" else ()
        if len(lines) >= MIN_LINES:
            cells.setdefault(lines, index)
    return cells


def shared(a: Path, b: Path) -> list[str]:
    """Where notebooks `a` and `b` hold the same long code cell."""
    cells_a, cells_b = long_cells(a), long_cells(b)
    return [
        f"{a.stem} cell [{cells_a[lines]}] == {b.stem} cell [{cells_b[lines]}] ({len(lines)} lines)"
        for lines in cells_a.keys() & cells_b.keys()
    ]


def test_normalising_ignores_layout_but_not_code() -> None:
    assert normalised("x = 1\n\n    y  =  2\n") == normalised("x = 1\ny = 2")
    assert normalised("x = 1\ny = 2") != normalised("x = 1\ny = 3")


@pytest.mark.parametrize(
    ("a", "b"),
    list(itertools.combinations(sorted(NOTEBOOKS_DIR.glob("*.ipynb")), 2)),
    ids=lambda p: p.stem,
)
def test_no_two_notebooks_share_a_long_code_cell(a: Path, b: Path) -> None:
    duplicates = shared(a, b)
    assert not duplicates, (
        f"copied code cells ({MIN_LINES}+ lines): {duplicates}; move the code into `lab` "
        "(e.g. lab.manifests.render/find) and call it from both notebooks"
    )
