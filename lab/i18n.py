"""The learner's language: lab's messages and the notebooks' check texts, from gettext catalogs.

English is the source language: a message is written in English where it is raised or shown
and looked up in the chosen language's catalogs (Babel `.po` files, read as they are: no compiled
`.mo` to keep in step with them). Two kinds of catalog:

- lab's own messages, `lab/locale/<lang>/LC_MESSAGES/<area>.po` (lab.catalogs.AREAS: one owner
  each), looked up by `_()` and `ngettext()`;
- the notebooks', `<root>/notebooks/locale/<lang>/LC_MESSAGES/<notebook>.po` (lab.nb_i18n):
  markdown blocks, from which the Spanish notebooks are generated, and (context `code`) the texts
  a code cell hands to lab (`lab.check(expected=...)`, a plot title), which `translate()` finds
  again at run time, f-strings included: the code cells of both languages are the same.

`use()` picks the language for the whole process; only the entry points call it (`cli.main`,
`lab.connect`, the IPython extension), from the settings they read once.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = [
    "CODE_CONTEXT",
    "LANGUAGES",
    "N_",
    "SOURCE_LANGUAGE",
    "_",
    "current",
    "forms",
    "locale_language",
    "ngettext",
    "placeholders",
    "translate",
    "use",
]

SOURCE_LANGUAGE = "en"
# The languages the lab speaks: code -> the language's own name (what `--lang` accepts).
LANGUAGES = {"en": "English", "es": "español"}
LOCALE_DIR = Path(__file__).with_name("locale")  # lab/locale/<lang>/LC_MESSAGES/<area>.po
NOTEBOOK_LOCALE = Path("notebooks", "locale")  # under the lab's root: <lang>/LC_MESSAGES/*.po
# msgctxt of a notebook's code-cell text (a check's expectation, a plot title): what
# `translate()` looks up, as opposed to the markdown blocks the generator translates.
CODE_CONTEXT = "code"
# A `{placeholder}` in a message: `{timeout}`, `{len(pods)}`, `{ratio:.1%}` (not `{{`).
_PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
# gettext's order of the variables that name the user's language (LANGUAGE is a list).
_LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


@dataclass(frozen=True)
class _Template:
    """A code-cell text with placeholders, as a pattern that finds its formatted form again."""

    pattern: re.Pattern[str]
    names: tuple[str, ...]
    translation: str
    literal_length: int  # the longest literal text wins when two patterns match


@dataclass(frozen=True)
class Catalogs:
    """One language's messages: lab's, the notebooks' code texts, and their templates."""

    language: str
    messages: Mapping[str, str] = field(default_factory=dict)
    plurals: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    plural: Callable[[int], int] = field(default=lambda n: int(n != 1))  # English: one, other
    code: Mapping[str, str] = field(default_factory=dict)
    templates: tuple[_Template, ...] = ()


_active = Catalogs(SOURCE_LANGUAGE)


def placeholders(message: str) -> list[str]:
    """The `{placeholders}` of `message`, in order (what a translation must keep)."""
    return _PLACEHOLDER.findall(message)


def forms(value: object) -> tuple[str, ...]:
    """A catalog entry's msgid or msgstr as a tuple: one text, or a plural's forms."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value) if isinstance(value, tuple | list) else ()


def locale_language(environ: Mapping[str, str]) -> str:
    """The first language of the user's locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG, as gettext
    reads them) that the lab speaks; English when none is."""
    for variable in _LOCALE_VARIABLES:
        for entry in environ.get(variable, "").split(":"):
            code = entry.split(".")[0].split("@")[0].split("_")[0].lower()
            if code in LANGUAGES:
                return code
    return SOURCE_LANGUAGE


def use(language: str, root: Path | None = None) -> None:
    """Speak `language` from now on in this process: lab's catalogs, and the notebooks'
    catalogs under `root` (the lab's checkout or workspace) when given."""
    global _active
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: the lab speaks {', '.join(LANGUAGES)}")
    _active = _load(language, root.resolve() if root else None)


def current() -> str:
    """The language in use (`use()`), English until an entry point chose one."""
    return _active.language


def _(message: str) -> str:
    """`message` in the language in use (itself when no translation is on record)."""
    return _active.messages.get(message) or message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of `singular`/`plural` for the number `n`, in the language in use."""
    forms = _active.plurals.get((singular, plural))
    if forms:
        index = _active.plural(n)
        if index < len(forms) and forms[index]:
            return forms[index]
    return singular if n == 1 else plural


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark only")
    """Mark `message` for translation where it is defined; `_()` translates it where shown."""
    return message


def translate(text: str) -> str:
    """A notebook code cell's text (a check's expectation or hint, a plot title) in the
    language in use: its catalog entry, or the entry it was formatted from (f-strings)."""
    if found := _active.code.get(text) or _active.messages.get(text):
        return found
    best: tuple[int, str] | None = None
    for template in _active.templates:
        match = template.pattern.fullmatch(text)
        if match and (best is None or template.literal_length > best[0]):
            translated = template.translation
            for name, value in zip(template.names, match.groups(), strict=True):
                translated = translated.replace("{" + name + "}", value)
            best = (template.literal_length, translated)
    return best[1] if best else text


def catalog_files(language: str, root: Path | None) -> Iterator[Path]:
    """Every `.po` file of `language`: lab's, then the notebooks' under `root`."""
    yield from sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po"))
    if root is not None:
        yield from sorted((root / NOTEBOOK_LOCALE / language / "LC_MESSAGES").glob("*.po"))


@cache
def _load(language: str, root: Path | None) -> Catalogs:
    """Read `language`'s catalogs (untranslated and fuzzy entries count as missing)."""
    if language == SOURCE_LANGUAGE:
        return Catalogs(language)
    # Babel comes with the `lab` extra: imported here, so that importing this module (which
    # lab.settings and the CLI do) keeps a plain install's `ironclad-lab --help` working.
    from babel.messages.pofile import read_po

    messages: dict[str, str] = {}
    plurals: dict[tuple[str, str], tuple[str, ...]] = {}
    code: dict[str, str] = {}
    plural: Callable[[int], int] = _active.plural
    for path in catalog_files(language, root):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        plural = gettext.c2py(catalog.plural_expr)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            ids, strings = forms(message.id), forms(message.string)
            if len(ids) == 2 and strings and all(strings):
                plurals[(ids[0], ids[1])] = strings
            elif len(ids) == 1 and strings and strings[0]:
                into = code if message.context == CODE_CONTEXT else messages
                into[ids[0]] = strings[0]
    templates = tuple(_template(msgid, msgstr) for msgid, msgstr in code.items() if "{" in msgid)
    return Catalogs(language, messages, plurals, plural, code, tuple(t for t in templates if t))


def _template(msgid: str, msgstr: str) -> _Template | None:
    """The pattern that finds `msgid` formatted (its placeholders filled in); None if it has no
    placeholder after all (literal braces)."""
    parts = _PLACEHOLDER.split(msgid)  # literal, name, literal, name, ..., literal
    names = tuple(parts[1::2])
    if not names:
        return None
    literals = [part.replace("{{", "{").replace("}}", "}") for part in parts[0::2]]
    pattern = "(.+?)".join(re.escape(literal) for literal in literals)
    length = sum(map(len, literals))
    return _Template(re.compile(pattern, re.DOTALL), names, msgstr, length)
