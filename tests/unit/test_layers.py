"""The documented layer table of lab/ and the import-linter contract `nox -s lint` enforces
([tool.importlinter] in pyproject.toml, `exhaustive`: every module of lab/ is in a row) say the
same thing: the same rows, in the same order."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = "`lab/`, lower layers first"  # the sentence that introduces the table


def contract_layers() -> list[set[str]]:
    """The contract's layers, lowest first, each a set of module names (a package's without
    its `/`: a module that becomes a package keeps its row)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "layers"]
    assert contract["containers"] == ["lab"]
    assert contract["exhaustive"] is True
    rows = []
    for layer in reversed(contract["layers"]):
        rows.append({n.strip() for n in re.split(r"[:|]", layer)})
    return rows


def documented_layers() -> list[set[str]]:
    """The table's first column, row by row (lowest first): the backticked module names (a
    package's own modules, in parentheses after it, left out)."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    (text,) = [d.read_text() for d in documents if MARKER in d.read_text()]
    table = text[text.index(MARKER) :].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    cells = [re.sub(r"\(.*?\)", "", row.split(" | ")[0]) for row in rows]
    return [{n.rstrip("/") for n in re.findall(r"`([^`]+)`", cell)} for cell in cells]


def test_the_documented_layers_are_the_enforced_ones() -> None:
    assert documented_layers() == contract_layers()
