"""The report's HTML: the notebooks' relative links work from build/lab-report/, and each
notebook's headings get anchors of their own (issue 22)."""

from __future__ import annotations

from lab.runner import report


def test_relative_links_are_rewritten_for_the_report_folder() -> None:
    markdown = (
        "[`docs/runbooks/HighErrorRate.md`](../docs/runbooks/HighErrorRate.md), "
        "[06 · Observability](06-observability.ipynb), [SRE](https://sre.google/), [up](#top)"
    )
    assert report.relink(markdown, "../../notebooks") == (
        "[`docs/runbooks/HighErrorRate.md`](../../docs/runbooks/HighErrorRate.md), "
        "[06 · Observability](#nb-06-observability), [SRE](https://sre.google/), [up](#top)"
    )


def test_each_notebooks_headings_get_their_own_anchors() -> None:
    section = (
        '<h2 id="Summary">Summary<a class="anchor-link" href="#Summary">¶</a></h2>'
        '<a href="#nb-02-b">next</a>'
    )
    body = f"<p>overview</p><h1 id='nb-01-a'>01-a</h1>{section}<h1 id='nb-02-b'>02-b</h1>{section}"
    html = report._unique_anchors(body)
    assert html.count('id="nb-01-a--Summary"') == 1
    assert html.count('id="nb-02-b--Summary"') == 1
    assert 'href="#nb-01-a--Summary"' in html
    assert html.count('href="#nb-02-b"') == 2  # links to a notebook's section stay as they are
