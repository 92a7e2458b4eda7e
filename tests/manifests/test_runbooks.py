"""Every alert has a runbook (docs/runbooks/<alert>.md) with the five sections, its runbook_url
points at that file, and every PromQL query in a runbook parses and reads known metrics."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import slo, slo_rules
from lab.runbooks import PROMQL_BLOCK, SECTIONS, sections
from lab.settings import get_settings

RUNBOOKS = get_settings().runbooks_dir


def alerts() -> list[dict[str, object]]:
    """Every alerting rule of both generated rule files."""
    return [
        r
        for scale in slo.SCALES
        for g in slo_rules.rule_groups(scale)["groups"]
        for r in g["rules"]
        if "alert" in r
    ]


ALERT_NAMES = sorted({str(a["alert"]) for a in alerts()})


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_alert_has_a_runbook_with_every_section(alert: str) -> None:
    path = RUNBOOKS / f"{alert}.md"
    assert path.is_file(), f"{alert}: write {path.relative_to(RUNBOOKS.parents[1])}"
    text = path.read_text()
    assert text.startswith(f"# {alert}\n"), f"{path.name} must start with '# {alert}'"
    found = sections(text)
    missing = [s for s in SECTIONS if not found.get(s, "").strip()]
    assert not missing, f"{path.name}: missing or empty sections {missing}"
    assert PROMQL_BLOCK.search(found["How to confirm"]), (
        f"{path.name}: 'How to confirm' needs at least one ```promql query"
    )


def test_runbook_urls_point_at_the_runbooks() -> None:
    assert slo.RUNBOOK_BASE_URL.startswith("https://"), "Alertmanager needs an absolute URL"
    assert slo.RUNBOOK_BASE_URL.endswith("/docs/runbooks"), "the base must name docs/runbooks"
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]  # type: ignore[index]
        assert url == f"{slo.RUNBOOK_BASE_URL}/{rule['alert']}.md", url


def test_every_runbook_belongs_to_an_alert() -> None:
    files = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert files == set(ALERT_NAMES)


QUERIES = [
    (f"{p.stem}#{i}", q.strip())
    for p in sorted(RUNBOOKS.glob("*.md"))
    for i, q in enumerate(PROMQL_BLOCK.findall(p.read_text()))
]


@pytest.mark.parametrize(("where", "query"), QUERIES, ids=[w for w, _ in QUERIES])
def test_runbook_query_parses_and_reads_known_metrics(
    where: str,
    query: str,
    known_metrics: frozenset[str],
    metric_names: Callable[[str], set[str]],
) -> None:
    unknown = metric_names(query) - known_metrics
    assert not unknown, f"{where}: {sorted(unknown)} are neither exported nor recorded"
