"""What a cluster cell would have done, for a learner whose lab runs on the local target.

A `%%cluster` cell is not run on the local target (nothing ever pretends a cluster result).
Instead of one bare line, the learner sees what the cell *would* do and what to look for:
the Kubernetes calls it makes, the outcomes its `lab.check`s expect, and (with
`%%cluster --show Kind/name ...`) the rendered objects it works on — all marked "not run here".
"""

from __future__ import annotations

import ast
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["MIMETYPE", "NotRun", "explain", "parse_show"]

MIMETYPE = "application/vnd.ironclad.not-run+json"
CALL_PREFIXES = ("env.k8s.", "kill_pod", "Cluster(")  # what counts as "a call on the cluster"
_CALL_LIMIT = 120


@dataclass(frozen=True)
class NotRun:
    """A cluster cell explained instead of run."""

    target: str
    calls: list[str] = field(default_factory=list)
    expectations: list[str] = field(default_factory=list)
    objects: list[tuple[str, str]] = field(default_factory=list)  # (Kind/name, YAML)

    def markdown(self) -> str:
        """The explanation as Markdown (what JupyterLab and the HTML report show)."""
        lines = [
            f"**⏭ Not run here** — this cell needs a Kubernetes cluster and the lab runs on "
            f"target `{self.target}`. On kind (or a workshop cluster) it would:"
        ]
        if self.calls:
            lines += ["", "*call the Kubernetes API:*", ""]
            lines += [f"- `{call}`" for call in self.calls]
        if self.expectations:
            lines += ["", "*and check that* (what you would see):", ""]
            lines += [f"- {html.escape(text)}" for text in self.expectations]
        for ref, text in self.objects:
            lines += ["", f"*the object it works on, `{ref}` (rendered, not applied):*", ""]
            lines += ["```yaml", text.rstrip(), "```"]
        return "\n".join(lines)

    def bundle(self) -> dict[str, object]:
        """The IPython display bundle; the notebook runner counts the MIMETYPE part."""
        plain = self.markdown().replace("**", "").replace("*", "").replace("`", "")
        return {
            "text/plain": plain,
            "text/markdown": self.markdown(),
            MIMETYPE: {
                "target": self.target,
                "calls": self.calls,
                "expectations": self.expectations,
                "objects": [ref for ref, _ in self.objects],
            },
        }


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
) -> NotRun:
    """Explain the cell body `source` (without the `%%cluster` line) instead of running it."""
    tree = _parse(source)
    calls: list[str] = []
    expectations: list[str] = []
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in ("lab.check", "check"):
            expectations += [_text(kw.value) for kw in node.keywords if kw.arg == "expected"]
        elif name.startswith(CALL_PREFIXES) or name.endswith(".probe"):
            call = ast.unparse(node)
            if len(call) > _CALL_LIMIT:
                call = call[: _CALL_LIMIT - 1] + "…"
            if call not in calls:
                calls.append(call)
    return NotRun(target, calls, expectations, [(ref, _find(objects, ref)) for ref in show])


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


def _text(node: ast.expr) -> str:
    """A check's `expected=` text: the string itself, or an f-string with its {fields} shown."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + ast.unparse(value.value) + "}")
        return "".join(parts)
    return ast.unparse(node)


def _find(objects: Sequence[Mapping[str, Any]], ref: str) -> str:
    """The rendered object `Kind/name` as YAML, or a line saying it is not in the render."""
    kind, _, name = ref.partition("/")
    for obj in objects:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return yaml.safe_dump(dict(obj), sort_keys=False)
    return f"# {ref} is not in the rendered manifests\n"
