"""The report built from parts (`report.ReportWriter`): each notebook's cells rendered as soon as
it ran, on the renderer thread, then the page assembled around them. The page must be the one a
single nbconvert export of all notebooks gives (what the report was before: `single_export`)."""

from __future__ import annotations

import base64
import os
import re
import threading
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lab.runner import offline_html, report

WIDGET = {"model_id": "f00", "version_major": 2, "version_minor": 0}
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def executed(folder: Path, name: str, *cells: nbformat.NotebookNode) -> Path:
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = KERNELSPEC
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def ran(source: str, *outputs: nbformat.NotebookNode, count: int = 1) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, execution_count=count, outputs=list(outputs))


output = nbformat.v4.new_output


def lessons(tmp_path: Path) -> tuple[report.RunResult, Path]:
    """Four notebooks as a run leaves them: two passed (math, plots, a widget, links, the same
    "Summary" heading in both), one failed (an error output, diagnostics), one not run."""
    notebooks, out = tmp_path / "notebooks", tmp_path / "report"
    notebooks.mkdir()
    out.mkdir()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
    first = executed(
        out,
        "01-first",
        nbformat.v4.new_markdown_cell(
            "# 01 · First\n\n$$\\frac{u}{t}$$ with $u$ inline; "
            "[the runbook](../docs/runbooks/HighErrorRate.md), [next](02-second.ipynb), "
            "[Summary](#Summary)\n\n## Summary\n\nDone."
        ),
        ran(
            "print('hello')\nplot()",
            output("stream", name="stdout", text="hello\n"),
            output("display_data", {"image/png": png, "text/plain": "<Figure>"}),
            output("display_data", {report.WIDGET_MIMETYPE: WIDGET, "text/plain": "50%"}),
        ),
    )
    second = executed(
        out,
        "02-second",
        nbformat.v4.new_markdown_cell(
            "# 02 · Second\n\n## Summary\n\nBack to [01](01-first.ipynb)."
        ),
        ran(
            "df",
            output(
                "execute_result",
                {"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "1"},
                execution_count=3,
            ),
            count=3,
        ),
    )
    third = executed(
        out,
        "03-third",
        nbformat.v4.new_markdown_cell("# 03 · Third"),
        ran(
            "1 / 0",
            output(
                "error",
                ename="ZeroDivisionError",
                evalue="division by zero",
                traceback=["\x1b[31mZeroDivisionError\x1b[0m: division by zero"],
            ),
        ),
        nbformat.v4.new_markdown_cell("### Diagnostics\n\n```text\nbackend http://x\n```"),
    )
    failure = report.Failure("03-third", 1, "1 / 0", "ZeroDivisionError", "division by zero", ())
    tally = [report.tally_notebook(nbformat.read(p, as_version=4)) for p in (first, second, third)]
    result = report.RunResult(
        "local",
        [
            report.NotebookResult("01-first", "passed", 1.5, tally[0], first),
            report.NotebookResult("02-second", "passed", 2.5, tally[1], second),
            report.NotebookResult("03-third", "failed", 0.5, tally[2], third, failure),
            report.NotebookResult("04-never"),
        ],
        duration_s=4.5,
        note="stopped at the first failure",
    )
    return result, notebooks


def single_export(result: report.RunResult, report_dir: Path, notebooks_dir: Path) -> str:
    """What the report was before it was built from parts: one merged notebook (overview, then
    each notebook's section heading and its cells), exported once."""
    merged = nbformat.v4.new_notebook()
    merged.metadata["kernelspec"] = KERNELSPEC
    merged.metadata["language_info"] = {"name": "python"}
    merged.cells.append(nbformat.v4.new_markdown_cell(report._overview_html(result)))
    for number, nb_result in enumerate(result.notebooks):
        merged.cells.append(nbformat.v4.new_markdown_cell(report._section_html(nb_result)))
        if nb_result.executed_path is None:
            continue
        for index, cell in enumerate(nbformat.read(nb_result.executed_path, as_version=4).cells):
            cell["id"] = f"nb{number}-{index}"
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if report.WIDGET_MIMETYPE in data and "text/plain" in data:
                    del data[report.WIDGET_MIMETYPE]
            merged.cells.append(cell)
    prefix = Path(os.path.relpath(notebooks_dir, report_dir)).as_posix()
    for cell in merged.cells:
        if cell.cell_type == "markdown":
            cell.source = report.relink(cell.source, prefix)
    title = f"Ironclad Lab report — {result.target}"
    body, _ = offline_html.exporter().from_notebook_node(merged, {"metadata": {"name": title}})
    return report._unique_anchors(str(body))


def comparable(page: str) -> str:
    """`page` without what differs from one export to the next: the random ids nbformat gives
    the page's own cells, and the date matplotlib writes into each formula's SVG."""

    def undated(found: re.Match[str]) -> str:
        svg = base64.b64decode(found.group(1)).decode()
        return "svg:" + re.sub(r"<dc:date>[^<]*</dc:date>", "", svg)

    page = re.sub(r'id="cell-id=[0-9a-f]{8}"', 'id="cell-id=random"', page)
    return re.sub(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", undated, page)


def test_the_page_built_from_parts_is_the_single_export(tmp_path: Path) -> None:
    result, notebooks = lessons(tmp_path)
    out = tmp_path / "report"
    page = report.write_report(result, out, notebooks).read_text(encoding="utf-8")
    assert comparable(page) == comparable(single_export(result, out, notebooks))
    # and that page holds what matters (so the equality above is about something)
    main = page.split("<main>", 1)[1]
    assert re.findall(r'<h1 id="(nb-[^"-]+-[^"-]+)">', main) == [  # the sections
        "nb-01-first",
        "nb-02-second",
        "nb-03-third",
        "nb-04-never",
    ]
    assert 'id="cell-id=nb0-0"' in main
    assert 'id="cell-id=nb2-2"' in main
    assert "hello" in main
    assert "<table><tr><td>1</td></tr></table>" in main
    assert "ZeroDivisionError" in main
    assert "stopped at the first failure" in main
    assert '<img alt="\\frac{u}{t}" class="lab-math"' in main  # typeset, display and inline
    assert '<img alt="u" class="lab-math"' in main
    assert 'href="../docs/runbooks/HighErrorRate.md"' in main
    assert 'href="#nb-02-second"' in main
    assert 'href="#nb-01-first"' in main
    assert "widget-view" not in main
    assert "50%" in main
    assert "ironclad-report-part" not in page  # every placeholder was filled


def test_each_notebooks_headings_are_anchored_under_its_section(tmp_path: Path) -> None:
    """Issue 22's unique anchors, on the page nbconvert writes: its clean-up (BeautifulSoup)
    rewrites the section headings' quotes, which the section pattern did not expect."""
    result, notebooks = lessons(tmp_path)
    page = report.write_report(result, tmp_path / "report", notebooks).read_text(encoding="utf-8")
    assert page.count('id="nb-01-first--Summary"') == 1
    assert page.count('id="nb-02-second--Summary"') == 1
    assert 'id="Summary"' not in page
    assert 'href="#nb-01-first--Summary"' in page  # a notebook's link to its own heading


def test_a_notebook_is_rendered_on_the_renderer_thread_as_soon_as_it_is_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`add` renders in the background; `write` then only assembles (it renders nothing that was
    added) and a notebook never added (here 03) is rendered when the page is written."""
    result, notebooks = lessons(tmp_path)
    events: list[tuple[str, str]] = []
    two_rendered = threading.Event()
    render = offline_html.Cells.html

    def recorded(cells: offline_html.Cells, nb: Any) -> str:
        html = render(cells, nb)
        events.append((threading.current_thread().name, nb.cells[0].source.splitlines()[0]))
        if len(events) == 2:
            two_rendered.set()
        return html

    monkeypatch.setattr(offline_html.Cells, "html", recorded)
    with report.ReportWriter(tmp_path / "report", notebooks) as writer:
        adder = threading.Thread(
            target=lambda: [writer.add(n, result.notebooks[n]) for n in (1, 0)], name="lane-1"
        )
        adder.start()
        adder.join()
        assert two_rendered.wait(timeout=60), events  # nobody asked for the page yet
        events.append(("MainThread", "write"))
        writer.write(result)
    [renderer] = {name for name, _ in events if name != "MainThread"}  # one thread rendered all
    assert renderer.startswith("report"), events
    assert [what for _, what in events] == [
        "# 02 · Second",
        "# 01 · First",
        "write",
        "# 03 · Third",  # never added: rendered for the page, on the renderer thread too
    ]
