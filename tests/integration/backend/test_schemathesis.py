"""Property-based API test: schemathesis against the OpenAPI the running backend serves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import BackendProcess

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]


def test_the_openapi_document_says_exactly_what_the_server_accepts(
    served_backend: BackendProcess, tmp_path: Path
) -> None:
    """Every generated request (valid and invalid) gets a non-5xx answer, every request the
    published schema allows is accepted (positive_data_acceptance: issue 20 item 11 found
    ids up to 2^63, extra body properties and chaos parameters the schema allowed but the
    server refused) and every one it forbids is refused (negative_data_rejection).

    The chaos token is sent so the chaos endpoints are exercised too, except /enable:
    chaos stays off, however its latency and error ratio get fuzzed.
    """
    assert served_backend.proc.env is not None
    auth = f"Authorization: Bearer {served_backend.proc.env['CHAOS_TOKEN']}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            served_backend.url + "/schema/openapi.json",
            "--url",
            served_backend.url,
            "--checks",
            "not_a_server_error,positive_data_acceptance,negative_data_rejection",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--exclude-path",
            "/api/chaos/enable",
            "-H",
            auth,
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts, result.stdout[-2000:]
    assert int(counts[1]) > 100
    assert counts[1] == counts[2]
    chaos = httpx.get(served_backend.url + "/api/chaos", headers={"Authorization": auth[15:]})
    assert chaos.json()["enabled"] is False
