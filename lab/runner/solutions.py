"""`ironclad-lab run --solutions [DIR]`: the exercise cells of the notebooks and their solutions.

An exercise cell is a code cell tagged `exercise` with its id in `metadata.ironclad.exercise`
(`lab.exercises`). With `--solutions`, the engine runs DIR/ID.py in place of the cell, so the run
proves every exercise is solvable; every solution file is read before any notebook runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.exercises import METADATA_KEY, TAG
from lab.i18n import _, ngettext
from lab.nb import read_notebook

__all__ = ["exercise_cells", "exercise_id", "load_solutions"]


def _tagged(cell: Any) -> bool:
    return bool(cell.cell_type == "code" and TAG in cell.metadata.get("tags", []))


def exercise_id(cell: Any) -> str | None:
    """The exercise id of a cell tagged `exercise` (None for any other cell)."""
    if not _tagged(cell):
        return None
    exercise = cell.metadata.get("ironclad", {}).get(METADATA_KEY)
    return str(exercise) if exercise else None


def exercise_cells(path: Path) -> Iterator[tuple[int, str]]:
    """(cell index, exercise id) of every exercise cell in the notebook at `path`.

    A cell tagged `exercise` without an id is an authoring mistake: LabError names it.
    """
    nb = read_notebook(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if not _tagged(cell):
            continue
        exercise = exercise_id(cell)
        if exercise is None:
            raise LabError(
                _("{notebook}: cell #{cell} is tagged {tag!r} but has no exercise id.").format(
                    notebook=path.name, cell=index, tag=TAG
                ),
                _("Add {metadata} to its cell metadata.").format(
                    metadata=f'{{"ironclad": {{"{METADATA_KEY}": "NN-name"}}}}'
                ),
            )
        yield index, exercise


def load_solutions(notebooks: Sequence[Path], directory: Path) -> dict[str, str]:
    """The solution source of every exercise in `notebooks`, read from `directory`/ID.py."""
    wanted = {
        exercise: directory / f"{exercise}.py"
        for nb in notebooks
        for _index, exercise in exercise_cells(nb)
    }
    missing = sorted(str(path) for path in wanted.values() if not path.is_file())
    if missing:
        raise LabError(
            ngettext(
                "No solution file for {count} exercise: {files}.",
                "No solution file for {count} exercises: {files}.",
                len(missing),
            ).format(count=len(missing), files=", ".join(missing)),
            _(
                "Write each one (the whole solved cell, ending with its lab.verify(...) call), or "
                "point --solutions at the folder that has them."
            ),
        )
    return {exercise: path.read_text() for exercise, path in wanted.items()}
