"""The report's HTML exporter: nbconvert's `lab` template with nothing loaded from the network.

nbconvert's HTML loads require.js, MathJax and mermaid from cdnjs and, for widget state, the
widget manager from unpkg: opened offline (a classroom without internet, a CI artifact read on a
train) the page waits on them and shows math as raw TeX. The report needs none of them — its
widgets are replaced by their text (`lab.runner.report`), its plots are embedded PNGs — so the
template below leaves those scripts out, and math in Markdown cells is typeset here by
matplotlib's mathtext (already a dependency) as an embedded SVG, its TeX kept as the alt text.
mathtext covers the TeX the lessons use (fractions, `\\left...\\right`, `\\text`, Greek); a
formula it cannot parse is shown as its TeX source in monospace, never dropped.

The report is rendered in parts (`lab.runner.report.ReportWriter`): each notebook's cells alone
(`Cells`, the `lab` template's cells without the page around them), then the page (`exporter`),
whose raw cells are placeholders that go through as they are.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any

import jinja2
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

from lab.i18n import _

TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{# nothing from a CDN: no require.js, widget manager, MathJax or mermaid #}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
img.lab-math { vertical-align: middle; }
span.lab-math-display { display: block; text-align: center; margin: 0.8em 0; }
</style>
{%- endblock extra_css -%}
{# the page's raw cells are placeholders (an HTML comment), passed through untouched #}
{%- block rawcell -%}{{ cell.source }}{%- endblock rawcell -%}
"""
# A notebook's cells as the page's body holds them, inside the element nbconvert's clean-up of the
# page selects on (`.jp-Notebook div...` gets tabindex), which `Cells.html` takes off again.
CELLS_WRAPPER = ('<div class="jp-Notebook">', "</div>")
CELLS_TEMPLATE = f"""\
{{%- extends 'base.html.j2' -%}}
{{%- block body_header -%}}{CELLS_WRAPPER[0]}{{%- endblock body_header -%}}
{{%- block body_footer -%}}{CELLS_WRAPPER[1]}{{%- endblock body_footer -%}}
"""
MATH_POINTS = 13  # the size formulas are typeset at (the report's body text is ~13 px)

# nbconvert's constructors carry no type hints: typed handles on the calls this module makes.
_Markdown: Callable[..., Any] = MarkdownWithMath


def math_svg(tex: str, *, display: bool) -> bytes | None:
    """`tex` (without `$`) typeset by mathtext as SVG, or None when mathtext cannot parse it.

    Display math gets display-style fractions, as MathJax would typeset `$$...$$`."""
    from matplotlib import mathtext, rc_context  # only a report with math pays for the import
    from matplotlib.font_manager import FontProperties

    source = " ".join(tex.split())
    if display:
        source = source.replace("\\frac", "\\dfrac")
    out = io.BytesIO()
    try:
        with rc_context({"mathtext.fontset": "cm"}):  # Computer Modern, as MathJax and LaTeX
            mathtext.math_to_image(
                f"${source}$", out, prop=FontProperties(size=MATH_POINTS), format="svg"
            )
    except ValueError:
        return None
    return out.getvalue()


def math_html(tex: str, *, display: bool) -> str:
    """An `<img>` holding `tex` typeset (centred on a line of its own for display math), or the TeX
    source in `<code>` with a title saying why, when mathtext cannot typeset it."""
    svg = math_svg(tex, display=display)
    if svg is None:
        delimiter = "$$" if display else "$"
        why = html.escape(_("not typeset: outside what matplotlib's mathtext supports"))
        source = html.escape(delimiter + tex + delimiter)
        element = f'<code class="lab-math" title="{why}">{source}</code>'
    else:
        data = base64.b64encode(svg).decode()
        element = (
            f'<img class="lab-math" alt="{html.escape(" ".join(tex.split()))}" '
            f'src="data:image/svg+xml;base64,{data}">'
        )
    # a <span>, not a <div>: Markdown puts math inside a <p>, which cannot hold a <div>
    return f'<span class="lab-math-display">{element}</span>' if display else element


class MathRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer, with math typeset here instead of left to MathJax."""

    def block_math(self, body: str) -> str:
        return math_html(body, display=True)

    def inline_math(self, body: str) -> str:
        return math_html(body, display=False)

    def latex_environment(self, name: str, body: str) -> str:
        return math_html(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)


class OfflineHTMLExporter(HTMLExporter):
    """HTMLExporter whose page loads nothing from the network (see the module docstring)."""

    @jinja2.pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        # nbconvert's own markdown2html, with MathRenderer in place of IPythonRenderer
        cell = context.get("cell", {})
        renderer = MathRenderer(
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return str(_Markdown(renderer=renderer).render(source))


_new_exporter: Callable[..., Any] = OfflineHTMLExporter


def exporter() -> Any:
    """The exporter `lab.runner.report` writes index.html with (its raw cells go through as they
    are: see `TEMPLATE`)."""
    return _new_exporter(template_name="lab", raw_template=TEMPLATE)


class Cells:
    """Renders a notebook's cells alone, as `exporter()` renders them inside the page.

    One per thread: an nbconvert exporter keeps state (its filters) between two exports."""

    def __init__(self) -> None:
        self._exporter = _new_exporter(template_name="lab", raw_template=CELLS_TEMPLATE)

    def html(self, nb: Any) -> str:
        """The cells of `nb` as HTML (the same markup the page would hold)."""
        body, _resources = self._exporter.from_notebook_node(nb)
        opening, closing = CELLS_WRAPPER
        inner = str(body).strip()
        if not (inner.startswith(opening) and inner.endswith(closing)):
            raise RuntimeError(f"nbconvert's cells are not wrapped in {opening}: {inner[:80]!r}")
        return inner[len(opening) : -len(closing)]
