"""A notebook's translatable text, and the notebook generated from it in another language.

What is translated, block by block (a change to one paragraph makes only that one stale):
- markdown cells, split at blank lines into blocks (a fenced code block stays whole and is not
  translated; neither is a block without a letter in it);
- in code cells, the texts handed to lab that a learner reads: the string (or f-string) given
  as `expected=`, `hint=`, `title=` or `what=` (context `code`, looked up by lab.i18n.translate).

The generated notebook keeps every code cell, cell id, tag and output-less state of the English
one; only markdown changes, and links that leave the notebooks folder are re-rooted one level up
(the generated notebooks live in `notebooks/<lang>/`).
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from IPython.core.inputtransformer2 import TransformerManager

from lab.i18n import CODE_CONTEXT

# The keyword arguments whose text a learner reads (lab.check, lab.plots, lab.waits.poll).
READ_KEYWORDS = ("expected", "hint", "title", "what")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LETTER = re.compile(r"[^\W\d_]")
# a Markdown link or image target: ](target) — the target up to its closing parenthesis
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
_SIBLING_NOTEBOOK = re.compile(r"^\d\d-[\w-]+\.ipynb(#.*)?$")


@dataclass(frozen=True)
class Text:
    """One translatable text of a notebook: where it is (cell index and id), and its context."""

    text: str
    cell: int
    cell_id: str
    context: str | None = None  # None: a markdown block; CODE_CONTEXT: a code cell's text


def markdown_blocks(source: str) -> list[str]:
    """`source` split into blocks and the blank-line runs between them: even indices are
    blocks, odd ones the separators, so `"".join()` gives `source` back exactly."""
    parts: list[str] = []
    block: list[str] = []
    gap: list[str] = []
    fence: str | None = None
    for line in source.splitlines(keepends=True):
        opening = _FENCE.match(line)
        if fence is None and not line.strip():
            gap.append(line)
            continue
        if gap and block:
            parts += ["".join(block), "".join(gap)]
            block = []
        elif gap:  # blank lines before the first block
            parts += ["", "".join(gap)]
        gap = []
        block.append(line)
        if opening:
            fence = None if fence == opening.group(1) else fence or opening.group(1)
    if block or not parts:
        parts.append("".join(block))
    if gap:
        parts += ["".join(gap), ""]
    return parts


def translatable(block: str) -> bool:
    """Whether a markdown block has text to translate (not a fenced code block, has letters)."""
    stripped = block.strip()
    fenced = bool(_FENCE.match(stripped)) and stripped.endswith(("```", "~~~"))
    return bool(stripped) and not fenced and bool(_LETTER.search(stripped))


def code_texts(source: str) -> list[str]:
    """The texts a code cell hands to lab (READ_KEYWORDS), f-strings as `{expression}` templates;
    IPython syntax (magics) is turned into Python first."""
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]
    except SyntaxError:
        return []
    texts = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if (body := _cell_magic_body(node)) is not None:  # `%%cluster`: its body is Python too
            texts += code_texts(body)
        for keyword in node.keywords:
            if keyword.arg in READ_KEYWORDS and (text := _template(keyword.value)):
                texts.append(text)
    return texts


def _cell_magic_body(call: ast.Call) -> str | None:
    """The body of `get_ipython().run_cell_magic(name, line, body)`; None for other calls."""
    function = call.func
    if isinstance(function, ast.Attribute) and function.attr == "run_cell_magic":
        body = call.args[2] if len(call.args) == 3 else None
        if isinstance(body, ast.Constant) and isinstance(body.value, str):
            return body.value
    return None


def _template(node: ast.expr) -> str | None:
    """A string constant's text, or an f-string's with `{expression}` for each value (its
    conversion and format spec kept: `{ratio:.1%}`); literal braces doubled."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if not isinstance(node, ast.JoinedStr):
        return None
    pieces = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            pieces.append(str(value.value).replace("{", "{{").replace("}", "}}"))
        elif isinstance(value, ast.FormattedValue):
            conversion = f"!{chr(value.conversion)}" if value.conversion != -1 else ""
            spec = ""
            if isinstance(value.format_spec, ast.JoinedStr):
                spec = ":" + "".join(
                    str(part.value) if isinstance(part, ast.Constant) else "{…}"
                    for part in value.format_spec.values
                )
            pieces.append("{" + ast.unparse(value.value) + conversion + spec + "}")
    return "".join(pieces)


def notebook_texts(notebook: Any) -> Iterator[Text]:
    """Every translatable text of `notebook` (an nbformat or JSON dict notebook), in order."""
    for index, cell in enumerate(notebook["cells"]):
        source = _source(cell)
        cell_id = cell.get("id", "")
        if cell["cell_type"] == "markdown":
            for block in markdown_blocks(source)[0::2]:
                if translatable(block):
                    yield Text(block.strip("\n"), index, cell_id)
        elif cell["cell_type"] == "code":
            for text in code_texts(source):
                yield Text(text, index, cell_id, CODE_CONTEXT)


def extract_notebook(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: object
) -> Iterator[tuple[int, str, str | tuple[str, str], list[str]]]:
    """Babel extraction method `ipynb` (registered under `babel.extractors`): per text, the
    cell's index + 1 as its line, an auto comment naming the cell; a code cell's text comes as
    `pgettext` (context `code`), which Babel's default keywords understand."""
    for text in notebook_texts(json.load(fileobj)):
        comment = [f"cell {text.cell_id}"]
        if text.context:
            yield text.cell + 1, "pgettext", (text.context, text.text), comment
        else:
            yield text.cell + 1, "", text.text, comment


def translated_notebook(
    notebook: Any, translate: Callable[[str], str | None], language: str
) -> Any:
    """A copy of `notebook` with its markdown blocks passed through `translate` (None: keep the
    English block), links leaving the notebooks folder re-rooted, `metadata.ironclad.language`
    set to `language`."""
    result = copy.deepcopy(notebook)
    for cell in result["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        parts = markdown_blocks(_source(cell))
        for index in range(0, len(parts), 2):
            block = parts[index]
            if not translatable(block):
                continue
            core = block.strip("\n")
            lead, tail = block[: block.index(core)], block[block.index(core) + len(core) :]
            parts[index] = lead + _reroot_links(translate(core) or core) + tail
        cell["source"] = "".join(parts)
    result["metadata"].setdefault("ironclad", {})["language"] = language
    return result


def _reroot_links(markdown: str) -> str:
    """Relative link targets one folder deeper (`../docs/x.md` -> `../../docs/x.md`), except
    anchors, absolute addresses and the sibling lesson notebooks (generated beside it)."""

    def reroot(match: re.Match[str]) -> str:
        target = match.group(2)
        keep = target.startswith(("#", "/")) or "://" in target or target.startswith("mailto:")
        if keep or _SIBLING_NOTEBOOK.match(target):
            return match.group(0)
        return f"{match.group(1)}../{target}{match.group(3)}"

    return LINK.sub(reroot, markdown)


def _source(cell: Any) -> str:
    """A cell's source as one string (JSON notebooks may keep it as a list of lines)."""
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)
