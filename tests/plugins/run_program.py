"""`run(*argv)`: a program's exit code and output, for tests that drive real programs (pip, uv,
a venv's `ironclad-lab`); imported by name (tests/plugins is on pytest's pythonpath)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(
    *argv: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """`argv` run to its end (killed after `timeout` s), its output captured as text."""
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd=cwd,
    )
