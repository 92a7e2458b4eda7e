"""The repository's address, said in three places, is one address: pyproject's project URLs
(the wheel's metadata), the runbook links of the generated alert rules, the README's clone."""

from __future__ import annotations

import tomllib
from pathlib import Path

from lab.slo import RUNBOOK_BASE_URL

ROOT = Path(__file__).resolve().parents[2]


def test_runbooks_and_clone_point_at_the_projects_source() -> None:
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    source = urls["Source"]
    assert f"{source}/blob/main/docs/runbooks" == RUNBOOK_BASE_URL
    assert f"git clone {source}.git" in (ROOT / "README.md").read_text()
    assert urls["Documentation"].startswith(f"{source}/blob/main/docs/")
    assert (ROOT / urls["Documentation"].removeprefix(f"{source}/blob/main/")).is_file()
    assert urls["Issues"] == f"{source}/issues"
