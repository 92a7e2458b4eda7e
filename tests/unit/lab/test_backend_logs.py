"""lab.backend_logs' parsing of backend log lines (reading them from real replicas is in
tests/integration/lab/exercises/test_lesson06.py)."""

from __future__ import annotations

import json

from lab.backend_logs import records


def test_records_keep_json_lines_and_skip_the_rest() -> None:
    line = {"time": "2026-11-30T17:00:00Z", "level": "INFO", "msg": "request", "request_id": "a"}
    lines = [json.dumps(line), "Traceback (most recent call last):", "{not json", ""]
    assert records(lines, "replica-1") == [{"replica": "replica-1", **line}]
