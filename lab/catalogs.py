"""The translation catalogs kept in step with their English sources (issue 25).

`update()` (`ironclad-lab generate translations`) extracts every translatable message, merges
it into each language's `.po` files (Babel: a changed message comes back "fuzzy" with its old
translation as a suggestion, a new one empty) and regenerates the translated notebooks.
`problems()` (`--check`, and the tests) lists what keeps a language from being complete: a stale
catalog, an empty or fuzzy translation, a placeholder or link that a translation lost, a
generated notebook that is not what its English one and the catalog make.

lab's messages go to one catalog per area, each with one owner (AREAS); a notebook's go to a
catalog named after it, under notebooks/locale/.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from lab import nb_i18n
from lab.i18n import (
    LANGUAGES,
    LOCALE_DIR,
    NOTEBOOK_LOCALE,
    SOURCE_LANGUAGE,
    forms,
    notebooks_dir,
    placeholders,
)
from lab.nb import notebook_from_dict, notebook_writes

PACKAGE = Path(__file__).resolve().parent
# The languages with catalogs: every one the lab speaks but its source.
TRANSLATED = tuple(language for language in LANGUAGES if language != SOURCE_LANGUAGE)
# lab's message catalogs: area -> the files and folders of lab/ whose messages it holds (one
# owner each); `lab` holds every other file.
AREAS: dict[str, tuple[str, ...]] = {
    "learn": (
        "checks.py",
        "errors.py",
        "exercises/",
        "notrun.py",
        "capabilities.py",
        "waits.py",
        "runner/",
    ),
    "cli": (
        "cli.py",
        "commands/",
        "workshop/",
        "workspace.py",
        "guide.py",
        "settings.py",
        "identity.py",
        "credentials.py",
        "extras.py",
        "kernelspec.py",
    ),
    "lab": (),
}
DEFAULT_AREA = "lab"
# gettext's names in lab's code: _("..."), N_("...") (marked only), ngettext("one", "many", n)
KEYWORDS: dict[str, tuple[int, ...] | None] = {"_": None, "N_": None, "ngettext": (1, 2)}
PROJECT = "ironclad-lab"
_CODE_SPAN = re.compile(r"`+[^`]+`+")


@dataclass(frozen=True)
class Source:
    """One catalog's English source: what it is called and where its .po files go."""

    name: str
    locale_dir: Path  # <locale_dir>/<lang>/LC_MESSAGES/<name>.po

    def po_file(self, language: str) -> Path:
        """The catalog of `language`."""
        return self.locale_dir / language / "LC_MESSAGES" / f"{self.name}.po"


def area_of(module: Path) -> str:
    """The area whose catalog holds the messages of `module` (a path under lab/)."""
    relative = module.resolve().relative_to(PACKAGE).as_posix()
    for area, members in AREAS.items():
        if any(relative == m or (m.endswith("/") and relative.startswith(m)) for m in members):
            return area
    return DEFAULT_AREA


def lab_template(area: str) -> Catalog:
    """Every message of `area`'s modules (`_`, `N_`, `ngettext`), as a template catalog."""
    template = Catalog(project=PROJECT, fuzzy=False)
    for module in sorted(PACKAGE.rglob("*.py")):
        if "course" in module.relative_to(PACKAGE).parts or area_of(module) != area:
            continue
        location = module.relative_to(PACKAGE.parent).as_posix()
        for line, message, comments, context in extract_from_file(
            "python", str(module), keywords=KEYWORDS, comment_tags=("Translators:",)
        ):
            template.add(
                message, locations=[(location, line)], auto_comments=comments, context=context
            )
    return template


def notebook_template(notebook: Path) -> Catalog:
    """Every translatable text of `notebook` (lab.nb_i18n), as a template catalog."""
    template = Catalog(project=PROJECT, fuzzy=False)
    content = json.loads(notebook.read_text())
    for text in nb_i18n.notebook_texts(content):
        existing = template.get(text.text, context=text.context)
        if existing is not None:  # the same text twice: one entry, both cells named
            existing.auto_comments.append(f"cell {text.cell_id}")
            continue
        template.add(
            text.text,
            locations=[(notebook.name, text.cell + 1)],
            auto_comments=[f"cell {text.cell_id}"],
            context=text.context,
        )
    return template


def english_notebooks(root: Path) -> list[Path]:
    """The English notebooks: the sources of the translated ones."""
    return sorted(notebooks_dir(root, SOURCE_LANGUAGE).glob("*.ipynb"))


def translated_notebook_path(root: Path, notebook: Path, language: str) -> Path:
    """Where `notebook`'s `language` version is generated: notebooks/<language>/<name>."""
    return notebooks_dir(root, language) / notebook.name


def sources(root: Path) -> Iterator[tuple[Source, Catalog]]:
    """Every catalog with its freshly extracted template: lab's areas, then the notebooks'."""
    for area in AREAS:
        yield Source(area, LOCALE_DIR), lab_template(area)
    for notebook in english_notebooks(root):
        yield Source(notebook.stem, root / NOTEBOOK_LOCALE), notebook_template(notebook)


def read_catalog(path: Path, language: str) -> Catalog:
    """The catalog at `path` (an empty one for `language` when there is none yet)."""
    if not path.exists():
        catalog = Catalog(locale=language, project=PROJECT, fuzzy=False)
        catalog.revision_date = catalog.creation_date = _now()
        return catalog
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def update(root: Path) -> list[Path]:
    """Merge every fresh template into each language's catalog and regenerate the translated
    notebooks; return the files written (an unchanged file is left alone)."""
    written = []
    for source, template in sources(root):
        for language in TRANSLATED:
            path = source.po_file(language)
            catalog = read_catalog(path, language)
            before = _content(catalog)
            catalog.update(template, update_header_comment=False, update_creation_date=False)
            catalog.obsolete.clear()  # a message that left the source leaves the catalog
            if path.exists() and _content(catalog) == before:
                continue
            catalog.revision_date = _now()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                write_po(handle, catalog, width=100, include_lineno=False, sort_output=False)
            written.append(path)
    for language in TRANSLATED:
        for notebook in english_notebooks(root):
            target = translated_notebook_path(root, notebook, language)
            wanted = generated_notebook(root, notebook, language)
            if target.exists() and target.read_text() == wanted:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(wanted)
            written.append(target)
    return written


def generated_notebook(root: Path, notebook: Path, language: str) -> str:
    """`notebook` in `language` (the file's text), from its catalog as it is on disk."""
    catalog = read_catalog(
        Source(notebook.stem, root / NOTEBOOK_LOCALE).po_file(language), language
    )

    def translate(block: str) -> str | None:
        message = catalog.get(block)
        strings = forms(message.string) if message and not message.fuzzy else ()
        return strings[0] if strings and strings[0] else None

    english = json.loads(notebook.read_text())
    generated = nb_i18n.translated_notebook(english, translate, language)
    return str(notebook_writes(notebook_from_dict(generated))) + "\n"


def problems(root: Path) -> list[str]:
    """What keeps a translation from being complete and current (empty: nothing)."""
    found: list[str] = []
    for source, template in sources(root):
        for language in TRANSLATED:
            path = source.po_file(language)
            found += _catalog_problems(path, read_catalog(path, language), template, root)
    for language in TRANSLATED:
        sources_by_name = {n.name for n in english_notebooks(root)}
        for notebook in english_notebooks(root):
            target = translated_notebook_path(root, notebook, language)
            if not target.exists() or target.read_text() != generated_notebook(
                root, notebook, language
            ):
                found.append(
                    f"{_shown(target, root)}: not what its English notebook and catalog make"
                )
        for extra in sorted(notebooks_dir(root, language).glob("*.ipynb")):
            if extra.name not in sources_by_name:
                found.append(f"{_shown(extra, root)}: no English notebook of that name")
    return found


def _catalog_problems(path: Path, catalog: Catalog, template: Catalog, root: Path) -> Iterator[str]:
    """One catalog's problems: stale against its template, untranslated, fuzzy, damaged."""
    where = _shown(path, root)
    wanted = {_key(m) for m in template if m.id}
    have = {_key(m) for m in catalog if m.id}
    for key in sorted(wanted - have, key=str):
        yield f"{where}: missing (the English changed?): {_short(key[0])}"
    for key in sorted(have - wanted, key=str):
        yield f"{where}: no longer in the English source: {_short(key[0])}"
    for message in catalog:
        if not message.id or _key(message) not in wanted:
            continue
        if message.fuzzy:
            yield f"{where}: fuzzy (check it, then remove the flag): {_short(message.id)}"
        elif not _translated(message):
            yield f"{where}: not translated: {_short(message.id)}"
        else:
            yield from (f"{where}: {issue}: {_short(message.id)}" for issue in _damage(message))


def _damage(message: Message) -> Iterator[str]:
    """What a translation lost of its source: placeholders, link targets, code spans."""
    ids, strings = forms(message.id), forms(message.string)
    wanted = Counter(placeholders(ids[-1]))
    for string in strings:
        if Counter(placeholders(string)) != wanted:
            yield f"placeholders differ ({sorted(wanted)} in the English)"
        if _targets(ids[0]) != _targets(string):
            yield "link targets differ"
        if Counter(_CODE_SPAN.findall(ids[0])) != Counter(_CODE_SPAN.findall(string)):
            yield "`code` spans differ (keep them exactly)"


def _targets(markdown: str) -> list[str]:
    return sorted(match.group(2) for match in nb_i18n.LINK.finditer(markdown))


def _translated(message: Message) -> bool:
    strings = forms(message.string)
    return bool(strings) and all(s.strip() for s in strings)


def _key(message: Message) -> tuple[object, str | None]:
    return (message.id, message.context)


def _content(catalog: Catalog) -> list[tuple[object, ...]]:
    """What a catalog says, without dates or line numbers: whether rewriting it changes it."""
    return [
        (
            m.id,
            m.context,
            m.string,
            m.fuzzy,
            tuple(m.auto_comments),
            tuple(dict.fromkeys(f for f, _ in m.locations)),  # a file once: no line numbers
        )
        for m in catalog
    ]


def _short(message_id: object) -> str:
    text = " ".join(str(message_id).split())
    return text if len(text) <= 90 else text[:87] + "..."


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _now() -> datetime:
    return datetime.now(UTC)
