"""The report's index.html loads nothing from the network (issue 23 item 9): no script, style
sheet, font or picture from a CDN, and its math typeset into the page instead of by MathJax."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from lab.runner import offline_html, report

# Attributes through which a page loads something (a link's href only for rel=stylesheet/icon/
# preload...: an <a href> is a link the reader may follow, not a load).
_LOADS = {
    "script": "src",
    "img": "src",
    "iframe": "src",
    "frame": "src",
    "embed": "src",
    "source": "src",
    "audio": "src",
    "video": "src",
    "track": "src",
    "object": "data",
    "input": "src",
}
_REMOTE = re.compile(r"^\s*(?:https?:|//)", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)
_SCRIPT_URL = re.compile(r"""["'`](?:https?:)?//[^"'`\s]+["'`]""")
FORMULA = r"\text{desired} = \left\lceil r \times \frac{u}{t} \right\rceil"


class ExternalLoads(HTMLParser):
    """Every URL a page would fetch from another host while it loads."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        urls = [values.get(_LOADS.get(tag, ""), "")]
        if tag == "link" and values.get("rel", "") not in ("", "alternate"):
            urls.append(values.get("href", ""))
        urls += values.get("srcset", "").split(",")
        self.found += [f"<{tag}> {url.strip()}" for url in urls if _REMOTE.match(url)]
        self.found += [f"<{tag} style> {u}" for u in css_urls(values.get("style", ""))]
        self._in = tag if tag in ("style", "script") else None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.found += [f"<style> {u}" for u in css_urls(data)]
        elif self._in == "script":
            self.found += [f"<script> {u}" for u in _SCRIPT_URL.findall(data)]

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def css_urls(css: str) -> list[str]:
    """The remote URLs CSS would fetch (url(...), @import), comments left out."""
    found = [a or b for a, b in _CSS_URL.findall(_CSS_COMMENT.sub("", css))]
    return [url for url in found if _REMOTE.match(url)]


def external_loads(page: str) -> list[str]:
    parser = ExternalLoads()
    parser.feed(page)
    return parser.found


def sample_notebook(path: Path) -> Path:
    """An executed notebook with what a lesson's report holds: math, a plot, a table, a link."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f"# Scaling\n\nThe HPA's rule:\n\n$${FORMULA}$$\n\nwith $u$ the utilization "
            "(`$__rate_interval` is Grafana's, not math); [HPA](https://kubernetes.io/docs/)."
        ),
        nbformat.v4.new_code_cell(
            "plot()",
            execution_count=1,
            outputs=[
                nbformat.v4.new_output(
                    "display_data", {"image/png": png, "text/plain": "<Figure>"}
                ),
                nbformat.v4.new_output(
                    "execute_result",
                    {"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "1"},
                    execution_count=1,
                ),
            ],
        ),
    ]
    nbformat.write(nb, path)
    return path


def write_sample_report(tmp_path: Path) -> str:
    executed = sample_notebook(tmp_path / "05-scaling.ipynb")
    nb = nbformat.read(executed, as_version=4)
    result = report.RunResult(
        "local",
        [report.NotebookResult("05-scaling", "passed", 1.0, report.tally_notebook(nb), executed)],
    )
    return report.write_report(result, tmp_path / "report").read_text(encoding="utf-8")


def test_the_report_loads_nothing_from_another_host(tmp_path: Path) -> None:
    page = write_sample_report(tmp_path)
    assert external_loads(page) == []
    assert 'href="https://kubernetes.io/docs/"' in page  # links stay links: the reader's to follow


def test_nbconvert_alone_would_load_require_js_and_mathjax(tmp_path: Path) -> None:
    """The check above can fail: nbconvert's own lab template is caught loading from cdnjs."""
    nb = nbformat.read(sample_notebook(tmp_path / "05.ipynb"), as_version=4)
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    found = " ".join(external_loads(stock))
    assert "require.min.js" in found
    assert "mathjax" in found.lower()
    assert "mermaid" in found  # the loader's dynamic import("https://...")


def test_math_is_typeset_into_the_page(tmp_path: Path) -> None:
    page = write_sample_report(tmp_path)
    images = re.findall(r'<img [^>]*class="lab-math"[^>]*>', page)
    alts = [re.search(r'alt="([^"]*)"', img).group(1) for img in images]  # type: ignore[union-attr]
    assert alts == [FORMULA, "u"], alts
    data = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', images[0])
    assert data is not None, images[0][:200]
    svg = base64.b64decode(data.group(1)).decode()
    assert svg.count("<path") > 10  # glyphs drawn as paths: no font to fetch
    assert "$$" not in page.split("<main>", 1)[1]  # no TeX left for a MathJax that never comes
    assert "<code>$__rate_interval</code>" in page


def test_tex_mathtext_cannot_typeset_is_shown_as_source() -> None:
    shown = offline_html.math_html(r"\begin{pmatrix} a \\ b \end{pmatrix}", display=True)
    assert shown.startswith('<span class="lab-math-display"><code class="lab-math"')
    assert r"$$\begin{pmatrix} a \\ b \end{pmatrix}$$" in shown
