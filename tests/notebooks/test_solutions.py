"""Every exercise in notebooks/*.ipynb is solvable by `ironclad-lab run --solutions`.

Parametrized over what the notebooks hold now: each cell tagged `exercise` names its id, has
a registered verifier (`lab.exercises`) and a solution file that ends with the `lab.verify`
call of that same id; each solution file belongs to an exercise cell. (With no exercise cells
or no solution files, pytest shows the parametrized test as skipped: nothing to check yet.)
Whether each solution really *passes* is what `ironclad-lab run --solutions` proves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from lab.exercises import TAG, solution_path, verify
from lab.nb import read_notebook, split_cluster_magic
from lab.runner.solutions import exercise_id

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.py"))


def tagged_cells() -> list[tuple[str, int, str | None, str]]:
    """(notebook, cell index, exercise id or None, source) of every cell tagged `exercise`."""
    found = []
    for path in NOTEBOOKS:
        for index, cell in enumerate(read_notebook(path, as_version=4).cells):
            if cell.cell_type == "code" and TAG in cell.metadata.get("tags", []):
                found.append((path.stem, index, exercise_id(cell), cell.source))
    return found


EXERCISE_CELLS = tagged_cells()


def verified_id(source: str) -> str | None:
    """The exercise id of the `lab.verify("ID", ...)` call that ends `source`, else None."""
    _, body = split_cluster_magic(source)
    tree = ast.parse(TransformerManager().transform_cell(body))  # type: ignore[no-untyped-call]
    last = tree.body[-1] if tree.body else None
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)):
        return None
    call = last.value
    if ast.unparse(call.func) != "lab.verify" or not call.args:
        return None
    first = call.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


@pytest.mark.parametrize(
    ("notebook", "index", "exercise", "source"),
    EXERCISE_CELLS,
    ids=[f"{nb}#{i}" for nb, i, _, _ in EXERCISE_CELLS],
)
def test_exercise_cell_has_a_verifier_and_a_solution(
    notebook: str, index: int, exercise: str | None, source: str
) -> None:
    assert exercise, f"{notebook} cell #{index} is tagged exercise but has no ironclad.exercise id"
    assert verify(exercise).status == "not attempted"  # LabError when no verifier is registered
    assert verified_id(source) == exercise, "the cell must end with lab.verify of its own id"
    path = solution_path(exercise, ROOT)
    assert path.is_file(), f"no solution file {path}"
    assert verified_id(path.read_text()) == exercise, f"{path.name} must end with lab.verify"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_solution_file_belongs_to_an_exercise_cell(path: Path) -> None:
    assert path.stem in {exercise for _, _, exercise, _ in EXERCISE_CELLS}
    assert verified_id(path.read_text()) == path.stem


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('answer = 2\nlab.verify("05-pdb", answer, env=env)\n', "05-pdb"),
        ('%%cluster --show A/b\nx = 1\n!echo hi\nlab.verify("05-pdb", x)', "05-pdb"),
        ('lab.verify("05-pdb", 1)\nprint("after")', None),
        ("answer = ...", None),
        ("verify('05-pdb', 1)", None),
        ("", None),
    ],
)
def test_verified_id_reads_only_a_closing_verify_call(source: str, expected: str | None) -> None:
    assert verified_id(source) == expected
