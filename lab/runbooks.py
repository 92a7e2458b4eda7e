"""The alert runbooks (docs/runbooks/<Alert>.md): their sections, and their PromQL run live.

`Runbook.read(settings, "HighErrorRate").run(prom, "How to confirm")` runs every ```promql block
of that section against Prometheus, so a notebook follows a runbook the way an on-call engineer
would, with the runbook's own queries (not a copy of them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from lab.checks import publish
from lab.errors import LabError
from lab.i18n import _
from lab.settings import Settings

# The sections every runbook has, in order (tests/manifests/test_runbooks.py enforces them).
SECTIONS = (
    "What it means",
    "Impact",
    "How to confirm",
    "Mitigation",
    "How to verify recovery",
)
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)```", re.DOTALL)


class InstantQuerier(Protocol):
    """What `Runbook.run` needs: lab.prom.Prom's instant query."""

    def query(self, q: str) -> pd.DataFrame: ...


def sections(text: str) -> dict[str, str]:
    """`## heading` -> body, for a Markdown file."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@dataclass(frozen=True)
class Runbook:
    """One alert's runbook."""

    alert: str
    path: Path
    text: str

    @classmethod
    def read(cls, settings: Settings, alert: str) -> Runbook:
        path = settings.runbooks_dir / f"{alert}.md"
        if not path.is_file():
            raise LabError(
                _("No runbook for {alert} ({path}).").format(alert=alert, path=path),
                _("Check the alert's name."),
            )
        return cls(alert, path, path.read_text())

    def section(self, title: str) -> str:
        found = sections(self.text)
        if title not in found:
            raise LabError(
                _("{runbook} has no section {title}.").format(
                    runbook=self.path.name, title=repr(title)
                ),
                _("Its sections: {sections}.").format(sections=list(found)),
            )
        return found[title].strip()

    def queries(self, title: str) -> list[str]:
        """The PromQL blocks of a section, in order."""
        return [q.strip() for q in PROMQL_BLOCK.findall(self.section(title))]

    def show(self, *titles: str) -> None:
        """Display the named sections (all of them by default) as Markdown."""
        body = "\n\n".join(f"## {t}\n\n{self.section(t)}" for t in titles or SECTIONS)
        heading = _("**Runbook `{name}`**").format(name=self.path.name)
        publish({"text/markdown": f"{heading}\n\n{body}", "text/plain": body})

    def run(self, prom: InstantQuerier, title: str) -> pd.DataFrame:
        """Run every query of a section: one row per query with its series and their values."""
        rows = []
        for q in self.queries(title):
            frame = prom.query(q)
            labels = [c for c in frame.columns if c != "value"]
            rows.append(
                {
                    "query": q,
                    "series": len(frame),
                    "values": {
                        ", ".join(f"{k}={row[k]}" for k in labels if pd.notna(row[k])) or "{}": row[
                            "value"
                        ]
                        for _, row in frame.iterrows()
                    },
                }
            )
        return pd.DataFrame(rows)
