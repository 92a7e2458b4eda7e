"""`lab.check`: assertions for learners that say what was expected and what was seen.

On success inside IPython the check publishes a display bundle with a machine-readable
`application/vnd.ironclad.check+json` part, which the notebook runner counts. The expectation and
the hint come from a notebook's code cell: they are shown in the learner's language
(`lab.i18n.translate`, from the notebook catalogs), in the bundle too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lab.errors import CheckFailedError
from lab.i18n import _, translate

__all__ = ["MIMETYPE", "SKIP_MIMETYPE", "CheckFailedError", "CheckResult", "check", "publish"]

MIMETYPE = "application/vnd.ironclad.check+json"
# A check the cluster cannot take (lab.capabilities: no NetworkPolicy enforcement, no metrics):
# shown with its reason and counted by the report as skipped, never as passed.
SKIP_MIMETYPE = "application/vnd.ironclad.skip+json"
_SEEN_LIMIT = 300


@dataclass(frozen=True)
class CheckResult:
    """A check that held: what was expected (as shown, in the learner's language) and what
    was seen (as text)."""

    expected: str
    seen: str
    passed: bool = True

    def _ipython_display_(self) -> None:
        """Nothing: check() already displayed it (a cell ending in a check shows it once)."""

    def bundle(self) -> dict[str, object]:
        """The IPython display bundle for this result."""
        return {
            "text/plain": _("✅ [pass] {expected} (seen: {seen})").format(
                expected=self.expected, seen=self.seen
            ),
            MIMETYPE: {"passed": self.passed, "expected": self.expected, "seen": self.seen},
        }


def describe(value: object) -> str:
    """Short one-line text for `value`: numbers as plain numbers (not `np.float64(...)`); a
    long mapping or list keeps its first whole entries and says how many more there are; other
    long text is cut in the middle (its start and end stay)."""
    value = _plain(value)
    text = " ".join((value if isinstance(value, str) else repr(value)).split())
    if len(text) <= _SEEN_LIMIT:
        return text
    if isinstance(value, Mapping | list | tuple) and value:
        items = (
            [f"{k!r}: {v!r}" for k, v in value.items()]
            if isinstance(value, Mapping)
            else [repr(v) for v in value]
        )
        kept: list[str] = []
        while items and len(", ".join([*kept, items[0]])) < _SEEN_LIMIT - 20:
            kept.append(items.pop(0))
        if kept:
            opening, closing = ("{", "}") if isinstance(value, Mapping) else ("[", "]")
            more = _(", … {count} more").format(count=len(items)) if items else ""
            return " ".join(f"{opening}{', '.join(kept)}{more}{closing}".split())
    half = _SEEN_LIMIT // 2
    return f"{text[:half]} … {text[-half:]}"


def _plain(value: object) -> object:
    """`value` with numpy scalars as Python numbers, inside mappings and lists too."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def check(condition: object, *, expected: str, seen: object = None, hint: str = "") -> CheckResult:
    """Assert `condition`; display ✅ and return a CheckResult, or raise CheckFailedError.

    `expected` and `hint` are shown translated (`lab.i18n.translate`: a notebook's text)."""
    seen_text = describe(seen)
    if not condition:
        raise CheckFailedError(translate(expected), seen_text, translate(hint) if hint else "")
    result = CheckResult(expected=translate(expected), seen=seen_text)
    publish(result.bundle())
    return result


def publish(bundle: dict[str, object]) -> None:
    """Display `bundle` when running under IPython; do nothing elsewhere."""
    try:
        from IPython.core.getipython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is not None:
        display(bundle, raw=True)  # type: ignore[no-untyped-call]
