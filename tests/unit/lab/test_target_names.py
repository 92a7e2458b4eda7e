"""No code outside lab/targets/ compares a target's name: it asks the target's row
(`lab.targets.spec`) what that target has. Read from the syntax tree, so a comment, a
docstring or a manifest's `"kind"` key is never mistaken for a comparison."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from lab.targets.spec import AUTO, SPECS

LAB = Path(__file__).resolve().parents[3] / "lab"
NAMES = frozenset({AUTO, *SPECS})


def target_names_in(node: ast.expr) -> list[str]:
    """The target names `node` spells as string constants: itself, or the elements of a
    tuple, list or set literal of target names (one that also holds other strings, such as
    `("apiVersion", "kind")`, is a list of manifest keys)."""
    elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    strings = [
        e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)
    ]
    return strings if strings and set(strings) <= NAMES else []


def name_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, name) of each comparison with a target name in `source`: `x == "local"`,
    `"kind" != x`, `x in ("auto", "local")`, and `case "cluster":` in a match statement.
    (`"kind" in obj` is a key lookup, not a comparison: left alone.)"""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, (left, right) in zip(node.ops, itertools.pairwise(operands), strict=True):
                if isinstance(op, ast.Eq | ast.NotEq | ast.Is | ast.IsNot):
                    names = target_names_in(left) + target_names_in(right)
                elif isinstance(op, ast.In | ast.NotIn) and not isinstance(right, ast.Constant):
                    names = target_names_in(right)
                else:
                    names = []
                found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.MatchValue):
            found += [(node.lineno, name) for name in target_names_in(node.value)]
    return found


def test_no_module_outside_lab_targets_compares_a_target_name() -> None:
    outside = [p for p in sorted(LAB.rglob("*.py")) if LAB / "targets" not in p.parents]
    assert len(outside) > 50  # the whole library is read, not an empty glob
    found = [
        f"{path.relative_to(LAB.parent)}:{line}: compares {name!r}"
        for path in outside
        for line, name in name_comparisons(path.read_text())
    ]
    assert found == [], "Ask lab.targets.spec(name) what the target has instead:\n" + "\n".join(
        found
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('if target == "local": pass', [(1, "local")]),
        ('ok = "kind" != running', [(1, "kind")]),
        ('ok = requested not in (None, "auto", running)', [(1, "auto")]),
        ('ok = t in ["cluster", "kind"]', [(1, "cluster"), (1, "kind")]),
        ('match t:\n    case "cluster":\n        pass', [(2, "cluster")]),
        ('ok = a < b == "local"', [(1, "local")]),
    ],
)
def test_the_check_finds_each_way_of_comparing_a_name(
    source: str, expected: list[tuple[int, str]]
) -> None:
    assert name_comparisons(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        'if obj.get("kind") != "NetworkPolicy": pass',  # a manifest's kind field
        'ok = "kind" in obj',  # a key lookup
        'ok = key not in ("apiVersion", "kind", "metadata")',  # manifest keys
        'render("kind", settings)',  # an overlay named as an argument
        '"""the local target == fine in a docstring"""',
        "ok = row.has_cluster and name == other",
    ],
)
def test_the_check_leaves_what_is_not_a_comparison_of_a_name(source: str) -> None:
    assert name_comparisons(source) == []
