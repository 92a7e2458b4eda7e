"""Nox sessions: `nox -s tests lint` (the default: what CI runs), `nox -s lab`, `nox -s jupyter`.

Extra arguments after `--` go to the tool each session runs, e.g. `nox -s tests -- -m unit`
or `nox -s lab -- --target kind`. Every session installs the project and exactly its extras at
the versions uv.lock pins (`uv sync --locked`: a lock that is stale against pyproject.toml stops
the session; `nox -s lock` refreshes it). Environments live in .nox/ and are reused between runs;
`lab` and `jupyter` share one, .nox/learner.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nox

nox.needs_version = ">=2026.10"
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).parent
# The one environment of `nox -s lab` and `nox -s jupyter` (the learner's: the `lab` extra).
LEARNER_ENV = ROOT / ".nox" / "learner"
LEARNER_BIN = LEARNER_ENV / "bin"
# checkov pins versions that clash with ours, so it gets a virtualenv of its own.
CHECKOV = "checkov>=3.3,<4"
# pytest-xdist workers for `nox -s tests`: more than the 2 cores of the machines it runs on,
# because most tests wait (for a stack, an alert, a kernel) rather than compute.
TEST_WORKERS = 4
# uv, unlike pip, does not compile bytecode while installing; where PYTHONDONTWRITEBYTECODE is
# set, every process the tests and the lab start (stacks, kernels, backends, checkov) would then
# compile pandas, kubernetes, jupyter, ... from source again (bench/README.md "Lab run").
COMPILE_BYTECODE = {"UV_COMPILE_BYTECODE": "1"}
NOTEBOOKS = ROOT / "notebooks"
WORKSPACE = ROOT / "build" / "workspace"  # `nox -s jupyter`'s learner workspace
# What the backend image installs (backend/Dockerfile): the `backend` extra as uv.lock pins it,
# with hashes; `nox -s lock` writes it, tests/integration/install/test_lock.py keeps it current.
BACKEND_REQUIREMENTS = "backend/requirements.txt"
EXPORT_BACKEND = (
    "export",
    "--frozen",
    "--no-emit-project",
    "--extra=backend",
    "--format=requirements.txt",
    f"--output-file={BACKEND_REQUIREMENTS}",
)
# What `nox -s wheelhouse` saves: the `lab` extra (the backend's included) as uv.lock pins it.
WHEEL_BATCHES = 8
EXPORT_LAB = ("export", "--frozen", "--no-emit-project", "--extra=lab", "--format=requirements.txt")
WHEELHOUSE_INSTALL = """\
Ironclad Lab wheelhouse: every Python package the lab needs, for the OS, CPU and Python of the
machine that saved it. Install with no package index, in the lab's checkout (USB stick):

  python3 -m venv .venv
  .venv/bin/pip install --no-index --find-links WHEELHOUSE -e ".[lab]"
  .venv/bin/ironclad-lab run            # or: .venv/bin/jupyter lab notebooks/

(WHEELHOUSE is this folder.) requirements.txt lists the locked versions with their sha256,
which pip checked when it saved them.
"""


def uv_program() -> str:
    """uv installed beside nox (`pip install nox uv`, `pipx install "nox[uv]"`), else on PATH."""
    with contextlib.suppress(ImportError):
        from uv import find_uv_bin

        return str(find_uv_bin())
    found = shutil.which("uv")
    if found is None:
        raise SystemExit("nox: uv not found: `python3 -m pip install uv` (the sessions need it)")
    return found


def sync(session: nox.Session, *extras: str, environment: Path | None = None) -> None:
    """Install the project (editable) and `extras` as uv.lock pins them into the session's venv
    (or `environment`), and nothing else: `uv sync` removes what the lock does not list."""
    env = {**COMPILE_BYTECODE}
    if environment is not None:
        env["UV_PROJECT_ENVIRONMENT"] = str(environment)
    session.run_install(
        uv_program(),
        "sync",
        "--locked",
        "--quiet",
        "--python",
        sys.executable if environment is not None else session.bin + "/python",
        *(f"--extra={extra}" for extra in extras),
        env=env,
        external=True,
    )


@nox.session(venv_backend="none", default=False)
def lock(session: nox.Session) -> None:
    """Refresh uv.lock from pyproject.toml, then backend/requirements.txt from uv.lock."""
    session.run(uv_program(), "lock", *session.posargs, external=True)
    session.run(uv_program(), *EXPORT_BACKEND, "--quiet", external=True)


@nox.session(venv_backend="none", default=False)
def wheelhouse(session: nox.Session) -> None:
    """Save every wheel a checkout's `pip install -e ".[lab]"` needs into DIR (`-- DIR`)."""
    # For a classroom without the package index (docs/instructor-guide.md, "Network plan"): the
    # locked `lab` extra (checked against uv.lock's hashes) and the build backend an editable
    # install of this checkout runs (pyproject's build-system.requires). Wheels are for this
    # machine's OS, CPU and Python: save once per kind of laptop. `pip wheel`, not `pip
    # download`: a package published only as an sdist is built here, once, so learners build
    # nothing.
    out = Path(session.posargs[0]).resolve() if session.posargs else ROOT / "build" / "wheelhouse"
    out.mkdir(parents=True, exist_ok=True)
    requirements = out / "requirements.txt"
    session.run(
        uv_program(), *EXPORT_LAB, f"--output-file={requirements}", "--quiet", external=True
    )
    build_backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    pip_wheel = (sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check")
    # hatchling asks for `editables` when it builds an editable install (PEP 660)
    commands = [[*pip_wheel, *build_backend["requires"], "editables", "--wheel-dir", str(out)]]
    # pip fetches one package at a time, and each index round trip costs seconds: WHEEL_BATCHES
    # pips at once (one requirements file each, hashes kept) take ~1/WHEEL_BATCHES of the time.
    for index, batch in enumerate(requirement_batches(requirements.read_text(), WHEEL_BATCHES)):
        part = out / f".requirements-{index}.txt"
        part.write_text(batch)
        commands.append(
            [*pip_wheel, "--no-deps", "--require-hashes", "-r", str(part), "-w", str(out)]
        )
    with ThreadPoolExecutor(len(commands)) as pool:
        done = list(
            pool.map(lambda argv: subprocess.run(argv, capture_output=True, text=True), commands)
        )
    for part in out.glob(".requirements-*.txt"):
        part.unlink()
    if failed := [d for d in done if d.returncode != 0]:
        session.error("pip wheel failed:\n" + "\n".join(d.stderr[-2000:] for d in failed))
    (out / "INSTALL.txt").write_text(WHEELHOUSE_INSTALL)
    session.log(f"wheelhouse: {out} ({sum(1 for _ in out.glob('*.whl'))} wheels); see INSTALL.txt")


def requirement_batches(text: str, count: int) -> list[str]:
    """`uv export` output (one requirement per entry, hash and comment lines under it) dealt
    into `count` requirements files' texts."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            entries.append([])
        if entries and not line.lstrip().startswith("#"):
            entries[-1].append(line)
    return ["\n".join(line for e in entries[i::count] for line in e) + "\n" for i in range(count)]


def install_checkov(session: nox.Session) -> Path:
    """Create or reuse checkov's own virtualenv under .nox/.cache; return the checkov program.

    checkov is not in uv.lock: its own exact pins clash with ours; CHECKOV bounds it."""
    venv = session.cache_dir.resolve() / "checkov-venv"  # absolute: tests may change directory
    python = venv / "bin" / "python"
    if not python.exists():
        session.run_install("uv", "venv", "--quiet", "--python", session.bin + "/python", str(venv))
    session.run_install(
        "uv", "pip", "install", "--quiet", "--python", str(python), CHECKOV, env=COMPILE_BYTECODE
    )
    return venv / "bin" / "checkov"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the tests (pytest on 4 workers; `-- -n 0`: one process; `kind` tests skip here)."""
    # The tests need the lab (with the backend) and the test tools: not bench, not lint.
    sync(session, "lab", "test")
    checkov = install_checkov(session)
    # pytest's exit code 5 (no test collected, e.g. `-m typo`) fails the session, unless the
    # checkout holds no test file at all yet.
    has_tests = any((ROOT / "tests").rglob("test_*.py"))
    session.run(
        "pytest",
        f"--numprocesses={TEST_WORKERS}",
        *session.posargs,
        env={"CHECKOV_BIN": str(checkov)},
        success_codes=[0] if has_tests else [0, 5],
    )


def learner_env(session: nox.Session) -> dict[str, str]:
    """Sync .nox/learner (the `lab` extra, from uv.lock); the environment variables that put
    the processes the session starts in it (run its programs as `LEARNER_BIN / name`)."""
    sync(session, "lab", environment=LEARNER_ENV)
    return {
        "VIRTUAL_ENV": str(LEARNER_ENV),
        "PATH": f"{LEARNER_BIN}{os.pathsep}{os.environ['PATH']}",
    }


@nox.session(venv_backend="none")
def lab(session: nox.Session) -> None:
    """Run the notebooks headless into build/lab-report/ (`ironclad-lab run`, in .nox/learner)."""
    if not any(NOTEBOOKS.glob("*.ipynb")):
        session.skip("no notebooks/*.ipynb yet, nothing to run")
    env = learner_env(session)
    session.run(LEARNER_BIN / "ironclad-lab", "run", *session.posargs, env=env, external=True)


@nox.session(default=False)
def pictures(session: nox.Session) -> None:
    """Remake docs/images/ from a local lab run (`-- --report DIR`: from a finished run's)."""
    # the lab's own run and report, then Playwright driving Debian's chromium: the `test` extra
    # is where Playwright is locked (scripts/pictures.py)
    sync(session, "lab", "test")
    session.run("python", str(ROOT / "scripts" / "pictures.py"), *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint: ruff check, ruff format --check, mypy --strict, deptry, import-linter (`-- ARGS` go
    to ruff check)."""
    sync(session, "lab", "lint")
    session.run("ruff", "check", *session.posargs)
    with tempfile.TemporaryDirectory(prefix="ironclad-cluster-cells-") as copies:
        # ruff skips a cell that starts with a cell magic: lint `%%cluster` bodies through
        # copies of the notebooks whose magic line is a comment (the notebooks' own ignores)
        notebooks = cluster_cells_as_code(Path(copies))
        config = f"--config={ROOT / 'pyproject.toml'}"  # the copies are outside the project
        session.run("ruff", "check", config, "--ignore=E402,B018", *notebooks)
    session.run("ruff", "format", "--check")
    session.run("mypy")  # [tool.mypy] in pyproject.toml names the packages: lab, backend
    session.run("deptry", ".")  # the imports of lab/ and backend/ match the declared extras
    session.run("lint-imports", "--no-cache", "--no-logo")  # lab/'s layers (pyproject.toml)


def cluster_cells_as_code(into: Path) -> list[str]:
    """Copies of the notebooks in `into`, each `%%cluster` line turned into a comment."""
    copies = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code" and "".join(cell["source"]).startswith("%%cluster"):
                cell["source"][0] = "# " + cell["source"][0]
        copy = into / path.name
        copy.write_text(json.dumps(notebook))
        copies.append(str(copy))
    return copies


def silence_jupyter_news(session: nox.Session, env: dict[str, str]) -> None:
    """Answer JupyterLab's "get notified about Jupyter news?" prompt with "no", in this venv only.

    The prompt shows while the `fetchNews` setting of @jupyterlab/apputils-extension:notification
    is "none"; overrides.json in the app settings directory changes that default.
    """
    app_dir = session.run(
        LEARNER_BIN / "python",
        "-c",
        "from jupyterlab.commands import get_app_dir; print(get_app_dir())",
        silent=True,
        env=env,
        external=True,
    )
    overrides_path = Path(str(app_dir).strip()) / "settings" / "overrides.json"
    overrides = json.loads(overrides_path.read_text()) if overrides_path.exists() else {}
    overrides.setdefault("@jupyterlab/apputils-extension:notification", {})["fetchNews"] = "false"
    overrides_path.parent.mkdir(parents=True, exist_ok=True)
    overrides_path.write_text(json.dumps(overrides, indent=2) + "\n")


@nox.session(venv_backend="none")
def jupyter(session: nox.Session) -> None:
    """Open JupyterLab on your workspace, build/workspace/ (made on first use), in .nox/learner."""
    # The notebooks you edit and save live in a learner workspace (`ironclad-lab init`), a copy
    # of the course in the checkout's ignored build/, so saved outputs never dirty the checkout;
    # delete build/workspace/ to start the course afresh. The env's `python3` kernel spec becomes
    # the lab's (`ironclad-lab kernelspec`): `%%cluster` works in every kernel from its first
    # cell, before any `import lab`.
    env = learner_env(session)
    lab = LEARNER_BIN / "ironclad-lab"
    session.run(lab, "init", "--exist-ok", str(WORKSPACE), silent=True, env=env, external=True)
    session.run(lab, "kernelspec", silent=True, env=env, external=True)
    silence_jupyter_news(session, env)
    as_root = ["--allow-root"] if os.geteuid() == 0 else []
    with session.chdir(WORKSPACE):  # JupyterLab's root: the workspace
        session.run(
            LEARNER_BIN / "jupyter",
            "lab",
            "notebooks",
            *as_root,
            *session.posargs,
            env=env,
            external=True,
        )
