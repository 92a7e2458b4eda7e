"""uv.lock matches pyproject.toml, and backend/requirements.txt (what the image installs) is
uv.lock's `backend` extra; both checks fail on a stale file (shown on edited copies)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def uv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """uv (the test extra's) offline: a check never resolves anything anew."""
    return subprocess.run(
        [sys.executable, "-m", "uv", *args],
        env={**os.environ, "UV_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def export_command() -> list[str]:
    """The `uv export` arguments backend/requirements.txt was written with (its header records
    them: `nox -s lock` runs the noxfile's EXPORT_BACKEND)."""
    header = (ROOT / "backend" / "requirements.txt").read_text().splitlines()[1]
    command = shlex.split(header.removeprefix("#"))
    assert command[:2] == ["uv", "export"], header
    assert {"--frozen", "--extra=backend", "--no-emit-project"} <= set(command), header
    return command[1:]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what the lock depends on: pyproject.toml, uv.lock, README.md (the readme)."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "backend").mkdir()
    return tmp_path


def test_the_lock_matches_pyproject(project: Path) -> None:
    checked = uv("lock", "--check", cwd=project)
    assert checked.returncode == 0, f"uv.lock is stale: run `nox -s lock`\n{checked.stderr}"


def test_a_stale_lock_is_detected(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"tqdm>=4.70,<5"', '"tqdm>=4.71,<5"'))
    assert uv("lock", "--check", cwd=project).returncode != 0


def test_the_backend_requirements_are_the_locked_backend_extra(project: Path) -> None:
    exported = uv(*export_command(), cwd=project)
    assert exported.returncode == 0, exported.stderr
    written = (project / "backend" / "requirements.txt").read_text()
    committed = (ROOT / "backend" / "requirements.txt").read_text()
    assert written == committed, "backend/requirements.txt is stale: run `nox -s lock`"
    assert "litestar==" in committed
    assert "pandas" not in committed  # the lab's packages stay out of the image


def test_stale_backend_requirements_are_detected(project: Path) -> None:
    """A lock whose litestar wheel changed (another hash) exports other requirements."""
    lock = project / "uv.lock"
    wheel = re.search(r'litestar-[^"]+\.whl", hash = "sha256:([0-9a-f]{64})"', lock.read_text())
    assert wheel
    lock.write_text(lock.read_text().replace(wheel[1], "0" * 64))
    exported = uv(*export_command(), cwd=project)
    assert exported.returncode == 0, exported.stderr
    written = (project / "backend" / "requirements.txt").read_text()
    assert f"--hash=sha256:{'0' * 64}" in written
    assert written != (ROOT / "backend" / "requirements.txt").read_text()
