"""Issue 21 item 6: the departures table (docs/departures.md) is linked from every lesson it
lists, and from no other (a link to a table that says nothing about the lesson misleads)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from lab.lessons import LESSONS

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "departures.md"
LINK = "(../docs/departures.md)"
ROW = re.compile(r"^\| (\d{2}) \|", re.MULTILINE)


def test_every_lesson_in_the_table_links_to_it_and_no_other_does() -> None:
    listed = set(ROW.findall(TABLE.read_text(encoding="utf-8")))
    assert listed, f"{TABLE} lists no lesson"
    linking = set()
    for row in LESSONS:
        nb = nbformat.read(ROOT / "notebooks" / f"{row.notebook}.ipynb", as_version=4)
        if any(c.cell_type == "markdown" and LINK in c.source for c in nb.cells):
            linking.add(row.id)
    assert linking == listed
