"""What a cluster cell would have done, for a learner whose lab runs on the local target.

A `%%cluster` cell is not run on the local target (nothing ever pretends a cluster result).
Instead of one bare line, the learner sees what the cell *would* do and what to look for:
the Kubernetes calls it makes, the outcomes its `lab.check`s expect (their `{fields}` filled
from the kernel's variables, as running the cell would fill them), and (with
`%%cluster --show Kind/name ...`) the rendered objects it works on — trimmed to the fields the
cell names, the whole object folded below, each object shown once per kernel — all marked
"not run here", in a monospace font. All of it in the learner's language (lab.i18n): the frame
from lab's catalog, the checks' texts from the notebook's (`translate`).
"""

from __future__ import annotations

import ast
import contextlib
import html
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from lab.i18n import N_, _, translate

__all__ = ["MIMETYPE", "NotRun", "Shown", "explain", "parse_show"]

MIMETYPE = "application/vnd.ironclad.not-run+json"
CALL_PREFIXES = (
    "env.k8s.",
    "kill_pod",
    "NamespaceClient(",
    "wrong_order.deploy_too_early",  # lesson 03: applies, watches and deletes a Deployment
)  # what counts as "a call on the cluster"
_CALL_LIMIT = 120
# Keys every object has: naming one of them in a cell says nothing about which fields it uses.
_STRUCTURE = frozenset(
    {"apiversion", "kind", "metadata", "spec", "template", "containers", "name", "namespace"}
    | {"labels", "annotations", "status", "data", "items", "type", "selector", "matchlabels"}
)
# Words of nearly every cell (its variables, the check's own keywords): not field names.
_COMMON = frozenset({"env", "app", "lab", "check", "expected", "seen", "hint", "k8s", "core"})
_PLACEHOLDER = re.compile(r"\{[^{}\s]+\}")  # a field left as its source
_SHORT = 20  # lines: an object this small is shown whole, nothing to fold
_PRE = "font-family: monospace; white-space: pre; overflow-x: auto"
# The explanation's labels (Markdown, HTML and plain text say them alike).
NOT_RUN_HERE = N_("⏭ Not run here")
CALLS = N_("call the Kubernetes API:")
CHECKS = N_("and check that (what you would see):")
WHOLE_OBJECT = N_("the whole object")


@dataclass(frozen=True)
class Shown:
    """A rendered object a cluster cell works on: the fields it names, and the whole object
    (`earlier`: an earlier cell of this kernel showed it, so it is named, not repeated)."""

    ref: str
    used: str
    full: str
    earlier: bool = False


@dataclass(frozen=True)
class NotRun:
    """A cluster cell explained instead of run (`expectations` as shown: translated)."""

    target: str
    calls: list[str] = field(default_factory=list)
    expectations: list[str] = field(default_factory=list)
    objects: list[Shown] = field(default_factory=list)

    def _intro(self) -> str:
        return _(
            "this cell needs a Kubernetes cluster and the lab runs on target {target}. "
            "On kind (or a workshop cluster) it would:"
        ).format(target=self.target)

    def markdown(self) -> str:
        """The explanation as Markdown."""
        lines = [f"**{_(NOT_RUN_HERE)}** — {self._intro()}"]
        if self.calls:
            lines += ["", f"*{_(CALLS)}*", ""]
            lines += [f"- `{call}`" for call in self.calls]
        if self.expectations:
            lines += ["", f"*{_(CHECKS)}*", ""]
            lines += [f"- {html.escape(text)}" for text in self.expectations]
        for shown in self.objects:
            lines += ["", f"*{_object_label(f'`{shown.ref}`', shown.earlier)}*"]
            if shown.earlier:
                continue
            lines += ["", "```yaml", (shown.used or shown.full).rstrip(), "```"]
            if shown.used:
                lines += ["", f"<details><summary>{_(WHOLE_OBJECT)}</summary>", ""]
                lines += ["```yaml", shown.full.rstrip(), "```", "", "</details>"]
        return "\n".join(lines)

    def html(self) -> str:
        """The explanation as HTML (what JupyterLab and the report prefer): YAML in <pre>."""
        heading = html.escape(_(NOT_RUN_HERE))
        parts = [f"<p><strong>{heading}</strong> — {html.escape(self._intro())}</p>"]
        if self.calls:
            items = "".join(f"<li><code>{html.escape(c)}</code></li>" for c in self.calls)
            parts.append(f"<p><em>{html.escape(_(CALLS))}</em></p><ul>{items}</ul>")
        if self.expectations:
            items = "".join(f"<li>{html.escape(e)}</li>" for e in self.expectations)
            parts.append(f"<p><em>{html.escape(_(CHECKS))}</em></p><ul>{items}</ul>")
        for shown in self.objects:
            ref = f"<code>{html.escape(shown.ref)}</code>"
            parts.append(f"<p><em>{_object_label(ref, shown.earlier)}</em></p>")
            if shown.earlier:
                continue
            parts.append(_pre(shown.used or shown.full))
            if shown.used:
                whole = html.escape(_(WHOLE_OBJECT))
                parts.append(f"<details><summary>{whole}</summary>{_pre(shown.full)}</details>")
        return "\n".join(parts)

    def plain(self) -> str:
        """The explanation as plain text (consoles, logs)."""
        lines = [f"{_(NOT_RUN_HERE)} — {self._intro()}"]
        if self.calls:
            lines += ["", _(CALLS), *(f"- {c}" for c in self.calls)]
        if self.expectations:
            lines += ["", _(CHECKS)]
            lines += [f"- {e}" for e in self.expectations]
        for shown in self.objects:
            lines += ["", _object_label(shown.ref, shown.earlier)]
            if not shown.earlier:
                lines += [(shown.used or shown.full).rstrip()]
        return "\n".join(lines)

    def bundle(self) -> dict[str, object]:
        """The IPython display bundle; the notebook runner counts the MIMETYPE part."""
        return {
            "text/plain": self.plain(),
            "text/markdown": self.markdown(),
            "text/html": self.html(),
            MIMETYPE: {
                "target": self.target,
                "calls": self.calls,
                "expectations": self.expectations,
                "objects": [shown.ref for shown in self.objects],
            },
        }


def _object_label(ref: str, earlier: bool) -> str:
    """The line before an object (`ref` as the format shows it): shown here, or above."""
    if earlier:
        return _("the object it works on, {ref}: shown above.").format(ref=ref)
    return _("the object it works on, {ref} (rendered, not applied):").format(ref=ref)


def _pre(text: str) -> str:
    return f'<pre style="{_PRE}">{html.escape(text.rstrip())}</pre>'


def parse_show(line: str) -> list[str]:
    """The `Kind/name` references after `--show` in the magic's line (`%%cluster --show A/b`)."""
    words = line.split()
    if "--show" not in words:
        return []
    return [w for w in words[words.index("--show") + 1 :] if not w.startswith("--")]


def explain(
    source: str,
    target: str,
    objects: Sequence[Mapping[str, Any]] = (),
    show: Sequence[str] = (),
    *,
    namespace: Mapping[str, Any] | None = None,
    shown_before: Collection[str] = (),
) -> NotRun:
    """Explain the cell body `source` (without the `%%cluster` line) instead of running it.

    `namespace` (the kernel's variables) fills the checks' `{fields}`; objects named in
    `shown_before` were shown by an earlier cell and are only named.
    """
    tree = _parse(source)
    calls: list[str] = []
    expected: list[ast.expr] = []
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in ("lab.check", "check"):
            expected += [kw.value for kw in node.keywords if kw.arg == "expected"]
        elif _on_cluster(name):
            call = ast.unparse(node)
            if len(call) > _CALL_LIMIT:
                call = call[: _CALL_LIMIT - 1] + "…"
            if call not in calls:
                calls.append(call)
    scope = dict(namespace) if namespace is not None else None
    expectations = [_text(node, scope) for node in expected]
    if tree is not None and scope is not None and any(_PLACEHOLDER.search(e) for e in expectations):
        scope = _scope(tree, scope)  # fields the cell defines itself: only when needed
        expectations = [_text(node, scope) for node in expected]
    words = _words(tree) if tree is not None else set()
    shown = [_show(objects, ref, words, ref in shown_before) for ref in show]
    return NotRun(target, calls, [translate(text) for text in expectations], shown)


def _on_cluster(name: str) -> bool:
    return name.startswith(CALL_PREFIXES) or name.endswith(".probe")


def _parse(source: str) -> ast.Module | None:
    """The cell as Python (IPython syntax such as `!cmd` transformed first), or None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)  # type: ignore[no-untyped-call]
    except ImportError:
        pass
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _scope(tree: ast.Module, scope: dict[str, Any]) -> dict[str, Any]:
    """`scope` (a copy of the kernel's variables) plus what the cell's top level defines without
    side effects: its imports, and assignments calling nothing but names it imports (never the
    cluster)."""
    imported: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            imported |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
        elif not isinstance(stmt, ast.Assign) or not _harmless(stmt.value, imported):
            continue
        try:
            code = compile(ast.Module([stmt], []), "<cluster cell>", "exec")
            exec(code, scope)  # noqa: S102 - the learner's own line, as running the cell would
        except Exception:  # noqa: S112 - a field it cannot fill stays a {field}
            continue
    return scope


def _harmless(value: ast.expr, imported: set[str]) -> bool:
    """No call in `value` but to a name the cell imported, and none on the cluster."""
    for node in ast.walk(value):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if _on_cluster(name) or name.split(".")[0] not in imported:
                return False
    return True


def _text(node: ast.expr, scope: dict[str, Any] | None) -> str:
    """A check's `expected=` text: the string itself, or an f-string with its {fields} filled
    from `scope` (a field it cannot evaluate is shown as `{field}`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append(_field(value, scope))
        return "".join(parts)
    return ast.unparse(node)


def _field(value: ast.FormattedValue, scope: dict[str, Any] | None) -> str:
    """One `{field}` of an f-string, evaluated in `scope` as the f-string would evaluate it."""
    if scope is not None:
        alone = ast.fix_missing_locations(ast.Expression(ast.JoinedStr([value])))
        with contextlib.suppress(Exception):  # shown as the field's source instead
            # the learner's own f-string field, evaluated as running the cell would
            return str(eval(compile(alone, "<field>", "eval"), scope))  # noqa: S307
    return "{" + ast.unparse(value.value) + "}"


def _words(tree: ast.Module) -> set[str]:
    """Every name, attribute, keyword and word of a string in the cell, lower-case, snake_case
    also joined (`restart_count` -> `restartcount`, to match `restartCount`)."""
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            words.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
    return {w.lower().replace("_", "") for w in words} - _STRUCTURE - _COMMON


def _used(value: Any, words: set[str]) -> Any:
    """The parts of `value` under a key named in `words` (a named key keeps its whole value);
    None when nothing is named. List items keep their `name`, to tell them apart."""
    if isinstance(value, Mapping):
        kept = {}
        for key, item in value.items():
            name = str(key).lower()
            if name not in _STRUCTURE and (name in words or f"{name}s" in words):
                kept[key] = item
            elif (inner := _used(item, words)) is not None:
                kept[key] = inner
        return kept or None
    if isinstance(value, list):
        items = []
        for item in value:
            inner = _used(item, words)
            if inner is not None:
                named = (
                    {"name": item["name"]} if isinstance(item, Mapping) and "name" in item else {}
                )
                items.append({**named, **inner} if isinstance(inner, dict) else inner)
        return items or None
    return None


def _named(item: object) -> bool:
    return isinstance(item, Mapping) and "name" in item


def _show(objects: Sequence[Mapping[str, Any]], ref: str, words: set[str], earlier: bool) -> Shown:
    """The rendered object `Kind/name`: the fields the cell names, and all of it as YAML."""
    kind, _slash, name = ref.partition("/")
    for obj in objects:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            full = yaml.safe_dump(dict(obj), sort_keys=False)
            if full.count("\n") <= _SHORT:
                return Shown(ref, "", full, earlier)
            body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            head = {"kind": kind, "metadata": {"name": name}}
            fields = _used(body, words) or {}
            return Shown(ref, yaml.safe_dump({**head, **fields}, sort_keys=False), full, earlier)
    missing = _("{ref} is not in the rendered manifests").format(ref=ref)
    return Shown(ref, "", f"# {missing}\n", earlier)
