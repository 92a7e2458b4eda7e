"""A plain `pip install` of the built wheel, in a fresh venv outside the checkout: `--help` and
`--version` work, and a subcommand says in one line which extra it needs.

The wheel has no dependencies of its own, so pip installs it with no index at all (`--no-index`);
building it (hatchling, in uv's isolated build environment) may fetch hatchling from the index
or uv's cache.
"""

from __future__ import annotations

import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from run_program import run

from lab.extras import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[3]

# the module fixture builds a wheel and a venv: minutes on a loaded 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group(__name__)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = run(
        sys.executable, "-m", "uv", "build", "--wheel", "--out-dir", tmp / "dist", ROOT, cwd=tmp
    )
    assert built.returncode == 0, built.stderr
    (built_wheel,) = (tmp / "dist").glob("*.whl")
    return built_wheel


@pytest.fixture(scope="module")
def plain_install(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv holding only the wheel built from this checkout."""
    tmp = tmp_path_factory.mktemp("plain-install")
    made = run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    assert made.returncode == 0, made.stderr
    bin_dir = tmp / "venv" / "bin"
    installed = run(bin_dir / "pip", "install", "--quiet", "--no-index", wheel, cwd=tmp)
    assert installed.returncode == 0, installed.stderr
    return bin_dir


def test_help_and_version_work_in_a_plain_install(plain_install: Path, tmp_path: Path) -> None:
    helped = run(plain_install / "ironclad-lab", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "usage: ironclad-lab" in helped.stdout
    versioned = run(plain_install / "ironclad-lab", "--version", cwd=tmp_path)
    assert versioned.returncode == 0, versioned.stderr
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert versioned.stdout.strip() == f"ironclad-lab {declared}"


@pytest.mark.parametrize("command", [["status"], ["render"], ["run", "--notebooks", "00"]])
def test_a_subcommand_names_the_extra_it_needs(
    plain_install: Path, tmp_path: Path, command: list[str]
) -> None:
    done = run(plain_install / "ironclad-lab", *command, cwd=tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith(f"error: `ironclad-lab {command[0]}` needs the `lab` extra")
    assert line.endswith(f"pip install '{DISTRIBUTION}[lab]'")
    assert not (tmp_path / "build").exists()  # nothing created where it stood


def test_the_wheel_carries_the_course(wheel: Path) -> None:
    """Issue 23 item 2: every tracked file of manifests/, notebooks/ (the solutions too) and
    docs/ as package data under lab/course/, and the backend's build context, so `ironclad-lab
    init` needs no checkout."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for part in ("manifests", "notebooks", "docs"):
        tracked = run("git", "ls-files", part, cwd=ROOT).stdout.split()
        assert tracked, part
        assert {f"lab/course/{path}" for path in tracked} <= names, part
    assert any(n.startswith("lab/course/notebooks/solutions/") for n in names)
    # every language: the generated notebooks and their catalogs (in notebooks/ above), and
    # lab's own catalogs, which lab.i18n reads from the package (issue 25)
    assert any(n.startswith("lab/course/notebooks/es/") for n in names)
    catalogs = run("git", "ls-files", "lab/locale", cwd=ROOT).stdout.split()
    assert catalogs
    assert set(catalogs) <= names
    assert {"backend/Dockerfile", "backend/requirements.txt", "lab/workspace.py"} <= names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    urls = [
        line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Project-URL: ")
    ]  # fmt: skip
    assert {url.split(",")[0].removeprefix("Project-URL: ") for url in urls} >= {
        "Homepage", "Documentation", "Issues", "Source"
    }  # fmt: skip
