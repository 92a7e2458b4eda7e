"""The lab run's results: per-notebook tallies, `summary.json`, the HTML report, the terminal table.

`lab.runner.run` executes the notebooks; this module only reads executed notebooks and writes
what a learner or an instructor looks at afterwards (`build/lab-report/`): the HTML report and
the terminal table in the learner's language (lab.i18n), summary.json in its own fixed keys and
values (what `workshop status` and CI read).
"""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbconvert.filters import strip_ansi as _strip_ansi

from lab.checks import MIMETYPE as CHECK_MIMETYPE
from lab.checks import SKIP_MIMETYPE
from lab.contract import KERNEL
from lab.exercises import MIMETYPE as EXERCISE_MIMETYPE
from lab.i18n import N_, SOURCE_LANGUAGE, _, ngettext
from lab.nb import SKIP_KEY, new_markdown_cell, new_notebook, new_raw_cell, read_notebook
from lab.runner import offline_html

# nbconvert carries no type hints: a typed handle on the call this module makes.
_strip_ansi_typed: Callable[[str], Any] = _strip_ansi

Status = Literal["passed", "failed", "not run"]
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
STATUS_MARK = {"passed": "✅", "failed": "❌", "not run": "⏸"}
# What a status is called where a person reads it (summary.json keeps the Status itself).
STATUS_LABEL = {"passed": N_("passed"), "failed": N_("failed"), "not run": N_("not run")}
# The overview table's columns (the terminal table says the numbers' shorter: `summary_table`).
_FIRST_COLUMNS = (N_("notebook"), N_("status"), N_("time"))
OVERVIEW_COLUMNS = (
    *_FIRST_COLUMNS,
    N_("cells executed"),
    N_("cells skipped (need a cluster)"),
    N_("checks passed"),
    N_("exercises passed"),
)
TABLE_COLUMNS = (
    *_FIRST_COLUMNS,
    N_("cells"),
    N_("skipped"),
    N_("checks"),
    N_("exercises"),
)


@dataclass(frozen=True)
class Check:
    """One passed `lab.check`, as displayed in the executed notebook."""

    expected: str
    seen: str


@dataclass(frozen=True)
class Tally:
    """What an executed notebook contains: cells run, cells skipped, checks and exercises passed."""

    cells_executed: int
    cells_skipped: int
    checks: tuple[Check, ...]
    exercises_passed: int = 0
    checks_skipped: tuple[str, ...] = ()  # "what: why" of checks this cluster cannot take


@dataclass(frozen=True)
class Failure:
    """The cell that stopped the run: its source, the error and the runner's diagnostics."""

    notebook: str
    cell_index: int
    source: str
    ename: str
    evalue: str
    traceback: tuple[str, ...]
    diagnostics: str = ""
    timed_out_after_s: float | None = None  # the cell was stopped for its time budget

    @property
    def headline(self) -> str:
        """One line: which cell failed, and how (a timeout says after how long)."""
        if self.timed_out_after_s is not None:
            return _("{notebook}: cell #{cell} timed out after {seconds:g} s ({reason})").format(
                notebook=self.notebook,
                cell=self.cell_index,
                seconds=self.timed_out_after_s,
                reason=self.evalue,
            )
        return _("{notebook}: cell #{cell} failed with {error}").format(
            notebook=self.notebook, cell=self.cell_index, error=self.ename
        )

    def summary(self) -> dict[str, object]:
        """The failing cell in summary.json."""
        return {
            "cell_index": self.cell_index,
            "ename": self.ename,
            "evalue": self.evalue,
            "timed_out_after_s": self.timed_out_after_s,
        }

    def text(self) -> str:
        """Plain-text rendering for the terminal (cell source, traceback, diagnostics)."""
        numbered = "\n".join(
            f"{n:4d} │ {line}" for n, line in enumerate(self.source.splitlines(), start=1)
        )
        trace = strip_ansi("\n".join(self.traceback)) or f"{self.ename}: {self.evalue}"
        parts = [
            f"✖ {self.headline}",
            _rule(_("cell source")),
            numbered,
            _rule(_("traceback")),
            trace,
        ]
        if self.diagnostics:
            parts += [_rule(_("diagnostics")), self.diagnostics]
        return "\n".join(parts)


@dataclass
class NotebookResult:
    """The outcome of one notebook in a run (`status` is "not run" until it executes)."""

    name: str
    status: Status = "not run"
    duration_s: float = 0.0
    tally: Tally = field(default_factory=lambda: Tally(0, 0, ()))
    executed_path: Path | None = None
    failure: Failure | None = None

    def summary(self) -> dict[str, object]:
        """This notebook's entry in summary.json (the keys DESIGN.md specifies)."""
        return {
            "name": self.name,
            "status": self.status,
            "duration_s": round(self.duration_s, 2),
            "cells_executed": self.tally.cells_executed,
            "cells_skipped": self.tally.cells_skipped,
            "checks_passed": len(self.tally.checks),
            "exercises_passed": self.tally.exercises_passed,
            "checks_skipped": len(self.tally.checks_skipped),
            "failure": self.failure.summary() if self.failure is not None else None,
        }


@dataclass
class RunResult:
    """A whole run: one target, every selected notebook (in one language), and why it stopped
    early if it did."""

    target: str
    notebooks: list[NotebookResult]
    duration_s: float = 0.0
    note: str = ""
    language: str = SOURCE_LANGUAGE  # the notebooks' (`run --lang`)

    @property
    def passed(self) -> bool:
        return bool(self.notebooks) and all(nb.status == "passed" for nb in self.notebooks)

    def summary(self) -> dict[str, object]:
        """The content of summary.json."""
        return {
            "target": self.target,
            "language": self.language,
            "duration_s": round(self.duration_s, 2),
            "notebooks": [nb.summary() for nb in self.notebooks],
        }


def _rule(title: str, width: int = 65) -> str:
    """A section line of the terminal's failure text: `── title ─────…`."""
    return f"── {title} ".ljust(width, "─")


def status_label(status: Status) -> str:
    """`status` as a person reads it, in the learner's language."""
    return _(STATUS_LABEL[status])


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython tracebacks carry them)."""
    return str(_strip_ansi_typed(text))


def tally_notebook(nb: Any) -> Tally:
    """Count executed cells, cells skipped for lack of a cluster, passed checks, passed
    exercises (`lab.verify`) and checks skipped for a missing capability in `nb`."""
    executed = skipped = exercises = 0
    checks: list[Check] = []
    unavailable: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.metadata.get(SKIP_KEY):
            skipped += 1
        elif cell.get("execution_count") is not None:
            executed += 1
        for output in cell.get("outputs", []):
            check = _passed(output, CHECK_MIMETYPE)
            if check is not None:
                checks.append(Check(str(check.get("expected", "")), str(check.get("seen", ""))))
            exercises += _passed(output, EXERCISE_MIMETYPE) is not None
            skip = _payload(output, SKIP_MIMETYPE)
            if skip is not None:
                unavailable.append(f"{skip.get('skipped')}: {skip.get('reason')}")
    return Tally(executed, skipped, tuple(checks), exercises, tuple(unavailable))


def _payload(output: Any, mimetype: str) -> dict[str, Any] | None:
    """The `mimetype` part of an output (a dict), or None."""
    payload = output.get("data", {}).get(mimetype)
    if isinstance(payload, str):
        payload = json.loads(payload)
    return payload if isinstance(payload, dict) else None


def _passed(output: Any, mimetype: str) -> dict[str, Any] | None:
    """The `mimetype` payload of an output when it says passed=true, else None."""
    payload = _payload(output, mimetype)
    return payload if payload is not None and payload.get("passed") is True else None


def write_report(result: RunResult, report_dir: Path, notebooks_dir: Path | None = None) -> Path:
    """Write summary.json and index.html into `report_dir` in one go; return the HTML path (a run
    renders the notebooks as they finish instead: `ReportWriter`)."""
    with ReportWriter(report_dir, notebooks_dir) as writer:
        return writer.write(result)


class ReportWriter:
    """summary.json and index.html, the page built from parts rendered while the run goes on.

    `add` hands a notebook that ran to a renderer thread of its own, which turns its cells into
    HTML there and then (the lanes mostly wait on kernels meanwhile); `write` renders the page
    around those parts — overview, each notebook's section heading, its cells — so a run's report
    takes (almost) no time after its last notebook. One renderer (one nbconvert exporter, one
    thread): the parts are rendered one at a time, in the order the notebooks finish.

    The notebooks' relative links (written from `notebooks_dir`) are made to work from the
    report: a link to a notebook goes to its section, any other one (`../docs/runbooks/...`)
    is rewritten relative to `report_dir`.
    """

    def __init__(self, report_dir: Path, notebooks_dir: Path | None = None) -> None:
        self.report_dir = report_dir
        self._prefix = (
            None
            if notebooks_dir is None
            else Path(os.path.relpath(notebooks_dir.resolve(), report_dir.resolve())).as_posix()
        )
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report")
        self._cells: offline_html.Cells | None = None  # made (and used) on the renderer thread
        self._parts: dict[int, tuple[Path, Future[str]]] = {}  # position -> (executed, its HTML)

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, position: int, notebook: NotebookResult) -> None:
        """Start rendering the cells of `notebook`, the run's `position`th (0-based), if it ran
        (any thread may call this)."""
        executed = notebook.executed_path
        if executed is not None:
            part = self._renderer.submit(self._render, position, executed)
            self._parts[position] = (executed, part)

    def write(self, result: RunResult) -> Path:
        """Write summary.json and index.html for `result`; return the HTML path. A notebook not
        handed to `add` (or since re-run) is rendered now; may be called again (an interrupt)."""
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
        parts = [self._part(number, nb) for number, nb in enumerate(result.notebooks)]
        page = _report_notebook()
        page.cells.append(new_markdown_cell(_overview_html(result)))
        for number, nb_result in enumerate(result.notebooks):
            page.cells.append(new_markdown_cell(_section_html(nb_result)))
            page.cells.append(new_raw_cell(_PART.format(number=number)))
        for cell in page.cells:
            self._relink(cell)
        title = _("Ironclad Lab report — {target}").format(target=result.target)
        exporter = offline_html.exporter()  # nothing loaded from a CDN: the report works offline
        body, _resources = exporter.from_notebook_node(page, {"metadata": {"name": title}})
        # one pass over the page: a part holding a placeholder's text is never searched
        body = _PLACEHOLDER.sub(lambda found: parts[int(found.group(1))], body)
        html_path = self.report_dir / "index.html"
        html_path.write_text(_unique_anchors(body), encoding="utf-8")
        return html_path

    def close(self) -> None:
        """Let the renderer thread go; parts not begun yet are dropped."""
        self._renderer.shutdown(wait=False, cancel_futures=True)

    def _part(self, number: int, notebook: NotebookResult) -> str:
        """The cells of `notebook` (the run's `number`th) as HTML; "" if it has no executed copy."""
        executed = notebook.executed_path
        if executed is None or not executed.exists():
            return ""
        if self._parts.get(number, (None,))[0] != executed:
            self.add(number, notebook)
        return self._parts[number][1].result()

    def _render(self, number: int, executed: Path) -> str:
        """On the renderer thread: the executed notebook's cells as HTML."""
        if self._cells is None:
            self._cells = offline_html.Cells()
        nb = _report_notebook()
        for index, cell in enumerate(read_notebook(executed, as_version=4).cells):
            cell["id"] = f"nb{number}-{index}"
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if WIDGET_MIMETYPE in data and "text/plain" in data:
                    del data[WIDGET_MIMETYPE]  # the report is static: show the text fallback
            self._relink(cell)
            nb.cells.append(cell)
        return self._cells.html(nb)

    def _relink(self, cell: Any) -> None:
        if self._prefix is not None and cell.cell_type == "markdown":
            cell.source = relink(cell.source, self._prefix)


def _report_notebook() -> Any:
    """An empty notebook with the metadata the report renders code with (Python's highlighting)."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


_PART = "<!-- ironclad-report-part {number} -->"  # a raw cell of the page: a notebook's cells
_PLACEHOLDER = re.compile(re.escape(_PART).replace(r"\{number\}", r"(\d+)"))


_LINK = re.compile(r"\]\((?!https?:|mailto:|#|/)([^)\s]+)\)")  # a relative Markdown link
_NOTEBOOK_LINK = re.compile(r"^(\d\d-[\w-]+)\.ipynb$")
# a section's heading, as `_section_html` writes it or as nbconvert's clean-up (BeautifulSoup) does
_SECTION = re.compile(r"""(<h1 id=['"](nb-[^'"]+)['"]>)""")
_HEADING_ID = re.compile(r'(<h[1-6] id=")([^"]+)(")|(href="#)([^"]+)(")')


def relink(markdown: str, prefix: str) -> str:
    """`markdown`'s relative links, as seen from a folder that reaches the notebooks' folder by
    `prefix`; links to a notebook point at its section of the report."""

    def fix(match: re.Match[str]) -> str:
        target = match.group(1)
        if notebook := _NOTEBOOK_LINK.match(target):
            return f"](#{_anchor(notebook.group(1))})"
        return f"]({posixpath.normpath(f'{prefix}/{target}')})"

    return _LINK.sub(fix, markdown)


def _unique_anchors(body: str) -> str:
    """The report's HTML with each notebook's heading ids (and links to them) prefixed by its
    section, so that "Summary" in 01 and in 02 are two anchors, not one id twice."""
    parts = _SECTION.split(body)
    out = [parts[0]]
    for opening, section, content in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):

        def prefixed(match: re.Match[str], section: str = section) -> str:
            if match.group(1):
                return f"{match.group(1)}{section}--{match.group(2)}{match.group(3)}"
            if match.group(5).startswith("nb-"):  # a notebook's own section: already unique
                return match.group(0)
            return f"{match.group(4)}{section}--{match.group(5)}{match.group(6)}"

        out += [opening, _HEADING_ID.sub(prefixed, content)]
    return "".join(out)


def _overview_html(result: RunResult) -> str:
    rows = "".join(
        f"<tr><td><a href='#{_anchor(nb.name)}'>{html.escape(nb.name)}</a></td>"
        f"<td>{STATUS_MARK[nb.status]} {html.escape(status_label(nb.status))}</td>"
        f"<td>{nb.duration_s:.1f} s</td>"
        f"<td>{nb.tally.cells_executed}</td><td>{nb.tally.cells_skipped}</td>"
        f"<td>{len(nb.tally.checks)}</td><td>{nb.tally.exercises_passed}</td></tr>"
        for nb in result.notebooks
    )
    verdict = (
        _("Target {target}, {seconds:.1f} s, every notebook passed.")
        if result.passed
        else _("Target {target}, {seconds:.1f} s, the run did not pass.")
    ).format(target=f"<b>{html.escape(result.target)}</b>", seconds=result.duration_s)
    note = _("Note:")
    noted = f"<p><b>{html.escape(note)}</b> {html.escape(result.note)}</p>" if result.note else ""
    heads = "".join(f"<th>{html.escape(_(column))}</th>" for column in OVERVIEW_COLUMNS)
    heading = html.escape(_("Ironclad Lab report"))
    return f"<h1>{heading}</h1>\n<p>{verdict}</p>{noted}\n<table><tr>{heads}</tr>{rows}</table>"


def _section_html(nb: NotebookResult) -> str:
    parts = [
        f"<hr><h1 id='{_anchor(nb.name)}'>{STATUS_MARK[nb.status]} "
        f"{html.escape(nb.name)} — {html.escape(status_label(nb.status))}</h1>"
    ]
    if nb.status != "not run":
        numbers = [f"{nb.duration_s:.1f} s", *tally_phrases(nb.tally)]
        parts.append(f"<p>{html.escape(' · '.join(numbers))}</p>")
    if nb.tally.checks:
        passed = _("✅ pass: {expected}")
        rows = "".join(
            f"<tr><td>{html.escape(passed.format(expected=c.expected))}</td>"
            f"<td>{html.escape(c.seen)}</td></tr>"
            for c in nb.tally.checks
        )
        heads = "".join(f"<th>{html.escape(text)}</th>" for text in (_("check"), _("seen")))
        parts.append(f"<table><tr>{heads}</tr>{rows}</table>")
    if nb.tally.checks_skipped:
        skipped = _("⏭ skipped: {what}")
        items = "".join(
            f"<li>{html.escape(skipped.format(what=s))}</li>" for s in nb.tally.checks_skipped
        )
        heading = html.escape(_("Checks this cluster cannot take (skipped):"))
        parts.append(f"<p>{heading}</p><ul>{items}</ul>")
    if nb.failure is not None:
        failed = _("Failed — {headline}").format(headline=nb.failure.headline)
        parts.append(
            f"<p><b>{html.escape(failed)}</b></p><pre>{html.escape(nb.failure.text())}</pre>"
        )
    return "\n".join(parts)


def tally_phrases(tally: Tally) -> list[str]:
    """A run notebook's numbers, one phrase each: cells executed and skipped, checks and
    exercises passed."""
    return [
        ngettext("{count} cell executed", "{count} cells executed", tally.cells_executed).format(
            count=tally.cells_executed
        ),
        ngettext(
            "{count} skipped (needs a cluster)",
            "{count} skipped (need a cluster)",
            tally.cells_skipped,
        ).format(count=tally.cells_skipped),
        ngettext("{count} check passed", "{count} checks passed", len(tally.checks)).format(
            count=len(tally.checks)
        ),
        ngettext(
            "{count} exercise passed", "{count} exercises passed", tally.exercises_passed
        ).format(count=tally.exercises_passed),
    ]


def _anchor(name: str) -> str:
    return "nb-" + "".join(ch if ch.isalnum() else "-" for ch in name)


def summary_table(result: RunResult, html_path: Path | None = None) -> str:
    """The one-screen summary printed at the end of a run (in the learner's language)."""
    heads = [_(column) for column in TABLE_COLUMNS]
    rows = [
        [
            nb.name,
            f"{STATUS_MARK[nb.status]} {status_label(nb.status)}",
            f"{nb.duration_s:.1f} s",
            str(nb.tally.cells_executed),
            str(nb.tally.cells_skipped),
            str(len(nb.tally.checks)),
            str(nb.tally.exercises_passed),
        ]
        for nb in result.notebooks
    ]
    widths = [max(len(cell) for cell in column) for column in zip(heads, *rows, strict=True)]
    lines = [
        _("Ironclad Lab — target {target} — {seconds:.1f} s").format(
            target=result.target, seconds=result.duration_s
        )
    ]
    for row in [heads, *rows]:  # the name and status left-aligned, the numbers right
        cells = [
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    counts = {s: sum(nb.status == s for nb in result.notebooks) for s in STATUS_MARK}
    lines.append(
        ngettext(
            "{count} notebook: {passed} passed, {failed} failed, {not_run} not run",
            "{count} notebooks: {passed} passed, {failed} failed, {not_run} not run",
            len(result.notebooks),
        ).format(
            count=len(result.notebooks),
            passed=counts["passed"],
            failed=counts["failed"],
            not_run=counts["not run"],
        )
    )
    if result.note:
        lines.append(_("note: {note}").format(note=result.note))
    if html_path is not None:
        lines.append(_("report: {path}").format(path=html_path))
    return "\n".join(lines)
