"""Nox sessions: `nox -s tests lint` (the default: what CI runs), `nox -s lab`, `nox -s jupyter`.

Extra arguments after `--` go to the tool each session runs, e.g. `nox -s tests -- -m unit`
or `nox -s lab -- --target kind`. Environments live in .nox/ and are reused between runs;
uv creates them when it is installed, virtualenv otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).parent
# checkov pins versions that clash with ours, so it gets a virtualenv of its own.
CHECKOV = "checkov>=3.3,<4"
# pytest-xdist workers for `nox -s tests`: more than the 2 cores of the machines it runs on,
# because most tests wait (for a stack, an alert, a kernel) rather than compute.
TEST_WORKERS = 4
# uv, unlike pip, does not compile bytecode while installing; where PYTHONDONTWRITEBYTECODE is
# set, every process the tests and the lab start (stacks, kernels, backends, checkov) would then
# compile pandas, kubernetes, jupyter, ... from source again (bench/README.md "Lab run").
COMPILE_BYTECODE = {"UV_COMPILE_BYTECODE": "1"}
# What `nox -s lab` needs before it can run anything.
LAB_RUNNER = ROOT / "lab" / "runner"
NOTEBOOKS = ROOT / "notebooks"


def install_checkov(session: nox.Session) -> Path:
    """Create or reuse checkov's own virtualenv under .nox/.cache; return the checkov program."""
    venv = session.cache_dir.resolve() / "checkov-venv"  # absolute: tests may change directory
    python = venv / "bin" / "python"
    if session.venv_backend == "uv":
        if not python.exists():
            session.run_install(
                "uv", "venv", "--quiet", "--python", session.bin + "/python", str(venv)
            )
        session.run_install(
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            CHECKOV,
            env=COMPILE_BYTECODE,
        )
    else:
        if not python.exists():
            session.run_install("python", "-m", "venv", str(venv))
        session.run_install(str(python), "-m", "pip", "install", "--quiet", CHECKOV, external=True)
    return venv / "bin" / "checkov"


@nox.session
def tests(session: nox.Session) -> None:
    """Run every test that can run on this machine, on TEST_WORKERS pytest-xdist workers (`-- -n 0`
    runs them in this one process); tests marked `kind` skip with a reason.

    pytest's exit code 5 (no tests collected) counts as success, so a fresh checkout whose
    test folders are still empty passes; pytest's own closing line says "no tests ran".
    """
    session.install("-e", ".[dev]", env=COMPILE_BYTECODE)
    checkov = install_checkov(session)
    session.run(
        "pytest",
        f"--numprocesses={TEST_WORKERS}",
        *session.posargs,
        env={"CHECKOV_BIN": str(checkov)},
        success_codes=[0, 5],
    )


@nox.session
def lab(session: nox.Session) -> None:
    """Run the notebooks headless (`ironclad-lab run`; target $LAB_TARGET, else auto) into
    build/lab-report/."""
    missing = []
    if not LAB_RUNNER.exists():
        missing.append("lab/runner/ (the runner)")
    if not any(NOTEBOOKS.glob("*.ipynb")):
        missing.append("notebooks/*.ipynb")
    if missing:
        session.skip(f"no notebooks yet: {' and '.join(missing)} missing, nothing to run")
    session.install("-e", ".[lab,backend]", env=COMPILE_BYTECODE)
    session.run("ironclad-lab", "run", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy (strict) on lab/ and backend/.

    Extra arguments go to `ruff check`, e.g. `nox -s lint -- --fix`.
    """
    session.install("-e", ".[lab,backend,lint]")
    session.run("ruff", "check", *session.posargs)
    session.run("ruff", "format", "--check")
    session.run("mypy")  # [tool.mypy] in pyproject.toml names the packages: lab, backend


def silence_jupyter_news(session: nox.Session) -> None:
    """Answer JupyterLab's "get notified about Jupyter news?" prompt with "no", in this venv only.

    The prompt shows while the `fetchNews` setting of @jupyterlab/apputils-extension:notification
    is "none"; overrides.json in the app settings directory changes that default.
    """
    app_dir = session.run(
        "python",
        "-c",
        "from jupyterlab.commands import get_app_dir; print(get_app_dir())",
        silent=True,
    )
    overrides_path = Path(str(app_dir).strip()) / "settings" / "overrides.json"
    overrides = json.loads(overrides_path.read_text()) if overrides_path.exists() else {}
    overrides.setdefault("@jupyterlab/apputils-extension:notification", {})["fetchNews"] = "false"
    overrides_path.parent.mkdir(parents=True, exist_ok=True)
    overrides_path.write_text(json.dumps(overrides, indent=2) + "\n")


@nox.session
def jupyter(session: nox.Session) -> None:
    """JupyterLab on notebooks/ with the project installed; extra args go to `jupyter lab`.

    The venv's `python3` kernel spec becomes the lab's (`lab.kernelspec`): `%%cluster` works
    in every kernel from its first cell, before any `import lab`.
    """
    session.install("-e", ".[lab,backend]", env=COMPILE_BYTECODE)
    session.run("python", "-m", "lab.kernelspec", silent=True)
    silence_jupyter_news(session)
    as_root = ["--allow-root"] if os.geteuid() == 0 else []
    session.run("jupyter", "lab", str(NOTEBOOKS), *as_root, *session.posargs)
