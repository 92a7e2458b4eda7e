"""The README and docs/ hold together (issue 23 item 9): the quickstarts come first, every link
and picture they reference exists (anchors included), the README shows every picture in
docs/images/, docs/README.md indexes every page, and the README's test command is
the one CI runs."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted(DOCS.rglob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HTML_SRC = re.compile(r"<(?:img|source)\b[^>]*\bsrc=\"([^\"]+)\"")
_HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$", re.MULTILINE)


def prose(markdown: str) -> str:
    """`markdown` without fenced code blocks and code spans (links there are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces become hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    kept = "".join(
        ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN"
    )  # letters, digits, spaces, hyphens, underscores
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a page (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for _, text in _HEADING.findall(_FENCE.sub("", markdown)):
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def references(page: Path) -> list[str]:
    """Every link and picture target of `page` outside code."""
    text = prose(page.read_text())
    return _LINK.findall(text) + _HTML_SRC.findall(text)


def test_slug_and_links_follow_githubs_rules() -> None:
    assert slug("`local` target (no Docker) — also what `nox -s tests` needs") == (
        "local-target-no-docker--also-what-nox--s-tests-needs"
    )
    assert anchors("# A\n## Bad input\n```\n# not a heading\n```\n## Bad input\n") == {
        "a",
        "bad-input",
        "bad-input-1",
    }
    page = '[a](x.md#y) ![pic](images/p.png) `[no](code.md)` <img src="i.png" alt="">'
    assert _LINK.findall(prose(page)) + _HTML_SRC.findall(prose(page)) == [
        "x.md#y",
        "images/p.png",
        "i.png",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_exists(page: Path) -> None:
    broken = []
    for target in references(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("index", [DOCS / "README.md", README], ids=["docs/README.md", "README"])
def test_the_indexes_list_every_page_of_docs(index: Path) -> None:
    """docs/README.md and the README's Documentation table each link every page of docs/."""
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in references(index)}
    pages = {p.resolve() for p in DOCS.glob("*.md")} - {(DOCS / "README.md").resolve()}
    missing = sorted(str(p.relative_to(ROOT)) for p in pages - linked)
    assert not missing, f"{index.relative_to(ROOT)} does not link {missing}"


def test_the_readme_starts_with_the_quickstarts_then_the_contents() -> None:
    text = README.read_text()
    sections = [t for level, t in _HEADING.findall(_FENCE.sub("", text)) if level == "##"]
    assert sections[:2] == ["Quickstart", "Contents"], sections
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    audiences = [t for level, t in _HEADING.findall(quickstart) if level == "###"]
    for who in ("Learner", "CI", "Instructor", "Contributor"):
        assert any(a.startswith(who) for a in audiences), (who, audiences)
    learner = quickstart.split("### Learner", 1)[1].split("\n### ", 1)[0]
    assert "git clone " in learner
    assert "nox -s jupyter" in learner


def ci_command() -> list[str]:
    """The nox command .ci/run ends with, as argv after `nox`."""
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    lines = [line for line in script if re.match(r"\s*python3 -m nox ", line)]
    assert len(lines) == 1, lines
    argv = shlex.split(lines[0])
    return argv[argv.index("nox") + 1 :]


def test_the_readmes_test_command_is_what_ci_runs() -> None:
    ci = ci_command()
    assert ci[:2] == ["-s", "tests"], ci  # CI runs the test suite, not something else
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    commands = [
        shlex.split(line.split("#", 1)[0])
        for block in blocks
        for line in block.splitlines()
        if "the test command" in line
    ]
    assert commands == [["nox", *ci]], commands


def test_the_readme_shows_every_picture_in_docs_images() -> None:
    """docs/images/ holds what scripts/pictures.py makes (tests/integration/lab/
    test_report_browser.py): the README shows each of them, and no other picture of docs/."""
    shown = {target for target in references(README) if target.startswith("docs/images/")}
    committed = {f"docs/images/{p.name}" for p in (DOCS / "images").glob("*.png")}
    assert committed
    assert shown == committed
