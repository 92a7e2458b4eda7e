"""`ironclad-lab init DIR`: a learner workspace outside the checkout, found by searching
upwards, refused where it would overwrite something or dirty a checkout (issue 23 item 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab import cli, workspace
from lab.errors import LabError
from lab.settings import WORKSPACE_MARKER, Settings, find_repo_root, is_workspace

ROOT = find_repo_root()


def test_init_copies_the_course_and_the_lab_finds_it_upwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new" / "ws"
    assert cli.main(["init", str(target)], Settings(repo_root=tmp_path)) == 0
    assert f"Workspace ready: {target}" in capsys.readouterr().out
    assert is_workspace(target)
    for part in (*workspace.COURSE, "notebooks/solutions"):
        tracked = subprocess.run(
            ["git", "ls-files", part], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        copied = sorted(str(p.relative_to(target)) for p in (target / part).rglob("*"))
        assert {t for t in tracked if not t.endswith("README.md")} <= set(copied), part
    assert (target / "backend" / "Dockerfile").is_file()  # kind's build context
    assert (target / "backend" / "app.py").is_file()
    assert not list(target.rglob("__pycache__"))
    marker = json.loads((target / WORKSPACE_MARKER).read_text())
    assert marker["course"] == str(ROOT)  # an editable install: the checkout is the course
    assert [p.name for p in tmp_path.joinpath("new").iterdir()] == ["ws"]  # no staging left
    monkeypatch.chdir(target / "notebooks" / "solutions")
    assert find_repo_root() == target  # the working directory wins over the package's checkout
    assert Settings.from_env({}).notebooks_dir == target / "notebooks"


def test_the_checkouts_build_folder_may_hold_one_and_exist_ok_keeps_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nox -s jupyter`: build/workspace of a checkout (git ignores build/), made once and
    reused with what the learner saved in it."""
    checkout = tmp_path / "checkout"
    (checkout / "manifests").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\n")
    made = workspace.init(checkout / "build" / "workspace")
    saved = made / "notebooks" / "01-namespace.ipynb"
    saved.write_text("the learner's work")
    settings = Settings(repo_root=tmp_path)
    assert cli.main(["init", "--exist-ok", str(made)], settings) == 0
    assert saved.read_text() == "the learner's work"
    assert cli.main(["init", str(made)], settings) == cli.EXIT_ERROR  # without: refused
    assert "is a workspace already" in capsys.readouterr().err
    with pytest.raises(LabError, match=r"inside .*checkout"):
        workspace.init(checkout / "notebooks" / "mine")


@pytest.mark.parametrize("where", ["non-empty", "workspace", "inside-checkout", "file"])
def test_init_refuses_and_changes_nothing(where: str, tmp_path: Path) -> None:
    target = tmp_path / "ws"
    if where == "inside-checkout":  # a checkout's notebooks/ (its build/ may hold one: above)
        (tmp_path / "manifests").mkdir()
        (tmp_path / "pyproject.toml").write_text("[project]\n")
        target = tmp_path / "notebooks" / "ws"
    elif where == "non-empty":
        target.mkdir()
        (target / "mine.txt").write_text("keep me")
    elif where == "workspace":
        workspace.init(target)
    elif where == "file":
        target.write_text("a file")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(LabError, match="Nothing was"):
        workspace.init(target)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_a_failed_copy_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies: list[str] = []
    real = shutil.copytree

    def copytree(src: Path, dst: Path, *args: object, **kwargs: object) -> object:
        if Path(dst).parent.name.startswith(".empty."):  # a part of the course (not a subfolder)
            copies.append(Path(dst).name)
            if Path(dst).name == "backend":
                raise OSError(28, "No space left on device")
        return real(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(workspace.shutil, "copytree", copytree)
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="No space left"):
        workspace.init(tmp_path / "empty")
    assert copies == [*workspace.COURSE, "backend"]
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # no staging directory left
    assert list((tmp_path / "empty").iterdir()) == []


def test_outside_a_workspace_the_cli_says_how_to_make_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LAB_REPO_ROOT"}
    done = subprocess.run(
        [sys.executable, "-m", "lab", "run", "--target", "local"],
        cwd=tmp_path,
        env={**env, "LAB_REPO_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "is not an Ironclad Lab workspace or checkout" in done.stderr
    assert "ironclad-lab init" in done.stderr
    assert list(tmp_path.iterdir()) == []
