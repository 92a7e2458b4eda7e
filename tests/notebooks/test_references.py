"""Issue 13.7: every notebook ends with "## Resources and references", holding public links.

The links' form is checked (https, a public host name, no placeholder); whether they answer is
not: this suite runs without network.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
HEADING = "## Resources and references"
MIN_LINKS = 2
MARKDOWN_LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")
PLACEHOLDER_HOSTS = re.compile(r"(^|\.)(example\.(com|org|net)|localhost|invalid|test)$")


def references(path: Path) -> str:
    """The text of the references section: from HEADING to the end of the notebook."""
    nb = nbformat.read(path, as_version=4)
    last = nb.cells[-1] if nb.cells else None
    if last is None or last.cell_type != "markdown" or HEADING not in last.source:
        return ""
    return last.source[last.source.index(HEADING) :]


def url_problem(url: str) -> str | None:
    """Why `url` is not a stable public https link, or None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https":
        return "not https"
    if "." not in host or re.fullmatch(r"[\d.]+", host) or PLACEHOLDER_HOSTS.search(host):
        return f"host {host!r} is not a public name"
    if parts.username or parts.password or parts.port:
        return "carries credentials or a port"
    return None


def test_url_problem_tells_good_links_from_bad() -> None:
    assert (
        url_problem("https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/")
        is None
    )
    assert url_problem("http://kubernetes.io/docs/") == "not https"
    assert url_problem("https://localhost:9090/graph") is not None
    assert url_problem("https://127.0.0.1/") is not None
    assert url_problem("https://docs.example.com/page") is not None


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_ends_with_resources_and_references(path: Path) -> None:
    section = references(path)
    assert section, f"{path.stem}: the last cell must be markdown with '{HEADING}'"
    urls = MARKDOWN_LINK.findall(section)
    bad = {url: problem for url in urls if (problem := url_problem(url))}
    assert not bad, f"{path.stem}: links that are not stable public https URLs: {bad}"
    assert len(set(urls)) >= MIN_LINKS, (
        f"{path.stem}: {len(set(urls))} links under '{HEADING}'; give at least {MIN_LINKS} "
        "(the Kubernetes docs and SRE Workbook chapters the notebook draws on)"
    )
