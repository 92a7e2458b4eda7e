"""SLO math, durations (lab.slo) and the generated rule files (lab.slo_rules; drift)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lab import cli, slo, slo_rules
from lab.settings import get_settings

SETTINGS = get_settings()


def test_committed_rule_files_match_the_generator() -> None:
    assert slo_rules.stale_files(SETTINGS.rules_dir) == [], "run `ironclad-lab generate rules`"


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = ["generate", "rules", "--rules-dir", str(tmp_path)]
    assert cli.main([*rules, "--check"]) == cli.EXIT_ERROR
    assert "Run `ironclad-lab generate rules`" in capsys.readouterr().err
    assert cli.main(rules) == 0
    assert cli.main([*rules, "--check"]) == 0
    drifted = tmp_path / "lab" / slo.RULE_FILE_NAME
    drifted.write_text("groups: []\n")
    assert cli.main([*rules, "--check"]) == cli.EXIT_ERROR
    assert str(drifted) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (90, "1m30s"),
        (4320, "1h12m"),
        (43200, "12h"),
        (30 * slo.DAY, "30d"),
    ],
)
def test_prom_duration(seconds: int, text: str) -> None:
    assert slo.prom_duration(seconds) == text


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_prom_duration_rejects(bad: float) -> None:
    with pytest.raises(ValueError, match="positive whole number"):
        slo.prom_duration(bad)


def test_lab_scale_is_one_minute_per_production_hour() -> None:
    assert slo.LAB.duration(slo.HOUR) == "1m"
    assert slo.LAB.duration(slo.PERIOD_S) == "12h"
    with pytest.raises(ValueError, match="does not divide by 60"):
        slo.LAB.seconds(90)


def test_windows_too_short_for_the_scrape_interval_are_refused() -> None:
    coarse = slo.Scale("coarse", 60, scrape_interval_s=5, eval_interval_s=5, budget_eval_s=5)
    with pytest.raises(ValueError, match="fewer than 4 scrapes"):
        slo_rules.rule_groups(coarse)


def test_budget_math_matches_the_sre_workbook() -> None:
    assert slo.error_budget_s(0.999) == pytest.approx(43.2 * 60)  # 43.2 minutes a month
    assert slo.burn_rate(0.0144, 0.999) == pytest.approx(14.4)
    assert slo.budget_remaining_percentage(0.0005, 0.999) == pytest.approx(50)
    assert slo.time_to_exhaustion_s(14.4) == pytest.approx(slo.PERIOD_S / 14.4)
    assert slo.time_to_exhaustion_s(0) == math.inf
    frame = slo.windows_frame()
    assert list(frame["budget_spent_pct"].round(1)) == [2.0, 5.0, 10.0, 10.0]
    assert list(frame["long_window"]) == ["1h", "6h", "1d", "3d"]
    assert list(slo.windows_frame(slo.LAB)["for"]) == ["2s", "15s", "1m", "3m"]


def test_every_alert_is_documented() -> None:
    for scale in slo.SCALES:
        alerts = [
            r for g in slo_rules.rule_groups(scale)["groups"] for r in g["rules"] if "alert" in r
        ]
        for rule in alerts:
            assert rule["labels"]["severity"] in {"critical", "warning"}
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])


def test_contract_names_are_generated() -> None:
    groups = slo_rules.rule_groups(slo.LAB)["groups"]
    records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    assert "error_budget_remaining_percentage" in records
    down = next(r for g in groups for r in g["rules"] if r.get("alert") == "BackendDown")
    assert down["expr"] == 'up{job="ironclad-backend"} == 0'
