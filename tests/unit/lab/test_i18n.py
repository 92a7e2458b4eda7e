"""lab.i18n, lab.nb_i18n and lab.catalogs on a small notebook of their own: extraction, the
generated notebook, run-time lookup (f-strings included) and every problem `--check` reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from babel.messages.pofile import read_po, write_po

from lab import catalogs, i18n, nb_i18n

pytestmark = pytest.mark.unit

MARKDOWN = """# 01 · A lesson

The first paragraph, with a [link](../docs/x.md), a [sibling](02-next.ipynb) and `code`.

```bash
kubectl get pods

kubectl get svc
```

---
Last paragraph."""
CODE = """%%cluster --show Deployment/backend
lab.check(ok, expected=f"never below {min_ready} pods ({ratio:.1%} failed)", hint="look up")
plots.timeline(frame, title="Traffic")
"""
FIRST = "The first paragraph, with a [link](../docs/x.md), a [sibling](02-next.ipynb) and `code`."
SPANISH = {
    "# 01 · A lesson": "# 01 · Una lección",
    FIRST: (
        "El primer párrafo, con un [enlace](../docs/x.md), un [hermano](02-next.ipynb) y `code`."
    ),
    "---\nLast paragraph.": "---\nÚltimo párrafo.",
    "never below {min_ready} pods ({ratio:.1%} failed)": (
        "nunca menos de {min_ready} pods ({ratio:.1%} fallaron)"
    ),
    "look up": "mira arriba",
    "Traffic": "Tráfico",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A lab root with one English notebook: one markdown cell, one code cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(MARKDOWN, id="md-1"),
        nbformat.v4.new_code_cell(CODE, id="code-1"),
    ]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(notebook, tmp_path / "notebooks" / "01-a-lesson.ipynb")
    return tmp_path


@pytest.fixture
def english_afterwards() -> Iterator[None]:
    yield
    i18n.use(i18n.SOURCE_LANGUAGE)


def notebook_po(root: Path) -> Path:
    return root / "notebooks" / "locale" / "es" / "LC_MESSAGES" / "01-a-lesson.po"


def translate_catalog(path: Path, translations: dict[str, str]) -> None:
    """Fill `path`'s entries from `translations` (as a translator would), clearing fuzzy."""
    with path.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if message.id in translations:
            message.string = translations[message.id]
            message.flags.discard("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, include_lineno=False)


def notebook_problems(root: Path) -> list[str]:
    """problems() about the test's notebook (lab's own catalogs are the repository's)."""
    return [p for p in catalogs.problems(root) if "01-a-lesson" in p]


def test_markdown_blocks_give_the_source_back_and_keep_fences_whole() -> None:
    parts = nb_i18n.markdown_blocks("\n" + MARKDOWN + "\n\n")
    assert "".join(parts) == "\n" + MARKDOWN + "\n\n"
    blocks = [p for p in parts[0::2] if nb_i18n.translatable(p)]
    assert [b.strip("\n") for b in blocks] == [
        "# 01 · A lesson",
        "The first paragraph, with a [link](../docs/x.md), a [sibling](02-next.ipynb) and `code`.",
        "---\nLast paragraph.",
    ]
    fence = next(p for p in parts if p.startswith("```"))
    assert "kubectl get pods\n\nkubectl get svc" in fence  # one block, not translated


def test_code_texts_turn_f_strings_into_templates_inside_cell_magics() -> None:
    assert nb_i18n.code_texts(CODE) == [
        "never below {min_ready} pods ({ratio:.1%} failed)",
        "look up",
        "Traffic",
    ]
    assert nb_i18n.code_texts('print("not read by lab")') == []


def test_locale_language_follows_gettext_order() -> None:
    assert i18n.locale_language({"LANG": "es_MX.UTF-8"}) == "es"
    assert i18n.locale_language({"LANGUAGE": "fr:es", "LANG": "en_US.UTF-8"}) == "es"
    assert i18n.locale_language({"LC_ALL": "C", "LANG": "de_DE"}) == "en"
    assert i18n.locale_language({}) == "en"


def test_update_then_translate_generates_the_spanish_notebook(root: Path) -> None:
    written = catalogs.update(root)
    assert notebook_po(root) in written
    problems = notebook_problems(root)
    assert sum("not translated" in p for p in problems) == len(SPANISH)
    assert any("not what its English notebook and catalog make" in p for p in problems) is False

    translate_catalog(notebook_po(root), SPANISH)
    catalogs.update(root)
    assert notebook_problems(root) == []
    generated = json.loads((root / "notebooks" / "es" / "01-a-lesson.ipynb").read_text())
    english = json.loads((root / "notebooks" / "01-a-lesson.ipynb").read_text())
    assert [c["id"] for c in generated["cells"]] == [c["id"] for c in english["cells"]]
    assert generated["cells"][1]["source"] == english["cells"][1]["source"]  # code: the same
    markdown = "".join(generated["cells"][0]["source"])  # a file keeps a list of lines
    assert markdown.startswith("# 01 · Una lección\n\nEl primer párrafo")
    assert "[enlace](../../docs/x.md)" in markdown  # one folder deeper
    assert "[hermano](02-next.ipynb)" in markdown  # generated beside it
    assert "kubectl get pods\n\nkubectl get svc" in markdown
    assert generated["metadata"]["ironclad"]["language"] == "es"
    assert catalogs.update(root) == []  # nothing left to write: stable


def test_a_changed_english_paragraph_is_reported_until_translated(root: Path) -> None:
    catalogs.update(root)
    translate_catalog(notebook_po(root), SPANISH)
    catalogs.update(root)
    path = root / "notebooks" / "01-a-lesson.ipynb"
    path.write_text(path.read_text().replace("Last paragraph.", "The last paragraph."))

    problems = notebook_problems(root)
    assert any("missing (the English changed?): --- The last paragraph." in p for p in problems)
    assert any("no longer in the English source: --- Last paragraph." in p for p in problems)
    assert any("notebooks/es/01-a-lesson.ipynb: not what" in p for p in problems)
    catalogs.update(root)  # merged: the old translation offered as a fuzzy suggestion
    assert any("fuzzy (check it, then remove the flag)" in p for p in notebook_problems(root))


@pytest.mark.parametrize(
    ("english", "spanish", "problem"),
    [
        ("look up", "", "not translated"),
        (
            "never below {min_ready} pods ({ratio:.1%} failed)",
            "nunca menos de {n} pods",
            "placeholders",
        ),
        (
            FIRST,
            "El primer párrafo, con un [enlace](x.md), un [hermano](02-next.ipynb) y `code`.",
            "link targets differ",
        ),
        (
            FIRST,
            "El primer párrafo, con un [enlace](../docs/x.md), un [hermano](02-next.ipynb) y eso.",
            "`code` spans differ",
        ),
    ],
)
def test_a_damaged_translation_is_reported(
    root: Path, english: str, spanish: str, problem: str
) -> None:
    catalogs.update(root)
    translate_catalog(notebook_po(root), {**SPANISH, english: spanish})
    catalogs.update(root)
    assert [p for p in notebook_problems(root) if problem in p]


def test_translate_finds_formatted_code_texts_again(root: Path, english_afterwards: None) -> None:
    catalogs.update(root)
    translate_catalog(notebook_po(root), SPANISH)
    assert i18n.translate("Traffic") == "Traffic"  # English until a language is chosen
    i18n.use("es", root)
    assert i18n.current() == "es"
    assert i18n.translate("Traffic") == "Tráfico"
    assert (
        i18n.translate("never below 2 pods (0.5% failed)")
        == "nunca menos de 2 pods (0.5% fallaron)"
    )
    assert i18n.translate("a text no catalog has") == "a text no catalog has"
    with pytest.raises(ValueError, match="the lab speaks en, es"):
        i18n.use("fr")


def test_the_babel_extractor_is_registered_and_gives_the_same_texts(root: Path) -> None:
    from babel.messages.extract import extract_from_file

    found = extract_from_file("ipynb", str(root / "notebooks" / "01-a-lesson.ipynb"))
    texts = [(context, message) for _, message, _, context in found]
    assert (None, "# 01 · A lesson") in texts
    assert ("code", "Traffic") in texts
    assert len(texts) == len(SPANISH)
