"""lab.runbooks on the committed runbooks, with a FAKE Prometheus (canned frames) for `run`;
tests/integration/lab/exercises/test_lesson07.py runs the queries on a real one."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.errors import LabError
from lab.runbooks import SECTIONS, Runbook
from lab.settings import get_settings

SETTINGS = get_settings()


class FakeProm:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def query(self, q: str) -> pd.DataFrame:
        self.asked.append(q)
        if q.startswith("slo:"):
            return pd.DataFrame(
                {"job": ["ironclad-backend"], "slo": ["availability"], "value": [0.3]}
            )
        return pd.DataFrame(columns=["value"])


def test_sections_and_queries_come_from_the_file() -> None:
    runbook = Runbook.read(SETTINGS, "HighErrorRate")
    assert all(runbook.section(title) for title in SECTIONS)
    confirm = runbook.queries("How to confirm")
    assert confirm[0] == 'slo:sli_error:ratio_rate5s{slo="availability"}'
    assert len(confirm) == 5
    assert runbook.queries("How to verify recovery")[1] == 'ALERTS{alertname="HighErrorRate"}'


def test_run_asks_every_query_and_keeps_labels_with_values() -> None:
    prom = FakeProm()
    runbook = Runbook.read(SETTINGS, "HighErrorRate")
    table = runbook.run(prom, "How to confirm")
    assert prom.asked == runbook.queries("How to confirm")
    assert table["series"].tolist() == [1, 0, 0, 0, 0]
    assert table["values"].iloc[0] == {"job=ironclad-backend, slo=availability": 0.3}


def test_unknown_alert_or_section_says_what_exists() -> None:
    with pytest.raises(LabError, match="No runbook for NoSuchAlert"):
        Runbook.read(SETTINGS, "NoSuchAlert")
    with pytest.raises(LabError, match="How to confirm"):
        Runbook.read(SETTINGS, "BackendDown").section("Rollback")
