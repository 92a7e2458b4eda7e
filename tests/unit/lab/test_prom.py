"""Prometheus API payloads (as Prometheus 2.x sends them) to tidy DataFrames."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.errors import LabTimeoutError, PrometheusError
from lab.net import free_port
from lab.prom import (
    Prom,
    alert_rules_frame,
    alert_state,
    alerts_frame,
    range_frame,
    samples_frame,
    targets_frame,
)

VECTOR = [
    {
        "metric": {"__name__": "up", "job": "ironclad-backend", "instance": "127.0.0.1:4001"},
        "value": [1764139200.5, "1"],
    },
    {
        "metric": {"__name__": "up", "job": "ironclad-backend", "instance": "127.0.0.1:4002"},
        "value": [1764139200.5, "0"],
    },
]
MATRIX = [
    {"metric": {"route": "/api/items"}, "values": [[1764139200, "1.5"], [1764139215, "2"]]},
    {"metric": {"route": "/api/work"}, "values": [[1764139200, "NaN"]]},
]
ALERTS = [
    {
        "labels": {"alertname": "HighErrorRate", "severity": "page"},
        "annotations": {"summary": "Too many 5xx"},
        "state": "pending",
        "activeAt": "2026-11-26T06:00:00.123Z",
        "value": "2.5e-01",
    },
    {
        "labels": {"alertname": "HighErrorRate", "severity": "page", "instance": "b"},
        "annotations": {},
        "state": "firing",
        "activeAt": "2026-11-26T05:59:00Z",
        "value": "1",
    },
]
TARGETS = [
    {
        "labels": {"job": "ironclad-backend", "instance": "127.0.0.1:4001"},
        "scrapePool": "x",
        "scrapeUrl": "http://127.0.0.1:4001/metrics",
        "lastError": "",
        "health": "up",
        "lastScrape": "2026-11-26T06:00:00.5Z",
    },
    {
        "labels": {"job": "ironclad-backend", "instance": "127.0.0.1:4002"},
        "scrapePool": "x",
        "scrapeUrl": "http://127.0.0.1:4002/metrics",
        "health": "down",
        "lastError": "connection refused",
        "lastScrape": "0001-01-01T00:00:00Z",
    },
]


def test_instant_vector_has_label_columns_and_float_values() -> None:
    frame = samples_frame(VECTOR)
    assert list(frame.columns) == ["__name__", "job", "instance", "value"]
    assert frame["value"].tolist() == [1.0, 0.0]
    assert type(frame) is pd.DataFrame


def test_scalar_result_is_one_value() -> None:
    assert samples_frame([1764139200.5, "42"]).to_dict("list") == {"value": [42.0]}


def test_empty_results_still_have_the_value_column() -> None:
    assert list(samples_frame([]).columns) == ["value"]
    assert list(range_frame([]).columns) == ["timestamp", "value"]
    assert list(alerts_frame([]).columns) == ["alertname", "state", "active_at", "value"]


def test_range_result_is_long_with_utc_timestamps() -> None:
    frame = range_frame(MATRIX)
    assert list(frame.columns) == ["timestamp", "route", "value"]
    assert len(frame) == 3
    assert frame["timestamp"].iloc[1] == pd.Timestamp("2025-11-26T06:40:15Z")
    assert frame["value"].iloc[:2].tolist() == [1.5, 2.0]
    assert pd.isna(frame["value"].iloc[2])


def test_alerts_frame_flattens_labels_and_parses_times() -> None:
    frame = alerts_frame(ALERTS)
    assert frame.loc[0, "active_at"] == pd.Timestamp("2026-11-26T06:00:00.123Z")
    assert frame.loc[0, "value"] == 0.25
    assert frame.loc[0, "summary"] == "Too many 5xx"
    assert frame["severity"].tolist() == ["page", "page"]
    assert frame["state"].tolist() == ["pending", "firing"]


def test_alert_state_prefers_firing_then_pending() -> None:
    frame = alerts_frame(ALERTS)
    assert alert_state(frame, "HighErrorRate") == "firing"
    assert alert_state(frame.iloc[:1], "HighErrorRate") == "pending"
    assert alert_state(frame, "BackendDown") == "inactive"
    assert alert_state(alerts_frame([]), "BackendDown") == "inactive"


# `/api/v1/rules?type=alert` data.groups as Prometheus 2.42 answers it (trimmed).
RULE_GROUPS = [
    {
        "name": "ironclad-symptoms",
        "rules": [
            {
                "name": "HighErrorRate",
                "duration": 60,
                "labels": {"severity": "page"},
                "annotations": {"summary": "5xx", "runbook_url": "https://x/HighErrorRate.md"},
                "type": "alerting",
            },
            {"name": "Quiet", "labels": {}, "annotations": {}, "type": "alerting"},
        ],
    },
    {"name": "empty", "rules": []},
]


def test_alert_rules_frame_has_one_row_per_rule_with_its_contract_fields() -> None:
    frame = alert_rules_frame(RULE_GROUPS)
    assert frame.drop(columns="severity").values.tolist() == [
        ["HighErrorRate", 60.0, "5xx", "https://x/HighErrorRate.md"],
        ["Quiet", 0.0, "", ""],
    ]
    assert frame["severity"].iloc[0] == "page"
    assert pd.isna(frame["severity"].iloc[1])  # no severity: what 06's check must catch
    assert list(alert_rules_frame([]).columns) == [
        "alert",
        "for_s",
        "severity",
        "summary",
        "runbook",
    ]


def test_targets_frame_keeps_health_and_last_error() -> None:
    frame = targets_frame(TARGETS)
    assert frame[["instance", "health", "last_error"]].values.tolist() == [
        ["127.0.0.1:4001", "up", ""],
        ["127.0.0.1:4002", "down", "connection refused"],
    ]
    assert frame.loc[0, "scrape_url"] == "http://127.0.0.1:4001/metrics"


def test_wait_for_alert_rejects_unknown_states() -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        Prom("http://127.0.0.1:1").wait_for_alert("X", state="resolved")


def test_unreachable_prometheus_says_what_to_do() -> None:
    with pytest.raises(PrometheusError, match=r"did not answer[\s\S]*lab.connect"):
        Prom(f"http://127.0.0.1:{free_port()}", timeout=1).query("up")


def test_waits_keep_polling_an_unreachable_prometheus_and_report_it() -> None:
    prom = Prom(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(LabTimeoutError, match=r"did not answer[\s\S]*prom.targets"):
        prom.wait_until("up", lambda f: True, timeout=0.5, interval=0.1, progress=False)
