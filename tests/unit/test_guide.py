"""docs/instructor-guide.md's generated sections are current (issue 22: the guide's minutes and
its playbook had drifted from the notebooks and from what the lab prints)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab import cli, guide
from lab.settings import Settings
from lab.targets import local_because

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_guide_is_current() -> None:
    assert cli.main(["generate", "guide", "--check"]) == 0, "run `ironclad-lab generate guide`"


def test_a_stale_guide_is_an_error_and_is_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "checkout"
    copy.mkdir()
    for part in ("pyproject.toml", "manifests", "notebooks", "docs"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, copy / part)
        else:
            (copy / part).write_bytes(source.read_bytes())
    guide_file = copy / guide.GUIDE
    guide_file.write_text(guide_file.read_text().replace("| **all** |", "| **every** |"))
    settings = Settings(repo_root=copy)
    assert cli.main(["generate", "guide", "--check"], settings) == cli.EXIT_ERROR
    assert str(guide_file) in capsys.readouterr().err
    assert cli.main(["generate", "guide"], settings) == 0
    assert cli.main(["generate", "guide", "--check"], settings) == 0


def test_the_timing_total_is_the_notebooks_own() -> None:
    lessons = guide.lessons(ROOT / "notebooks")
    assert len(lessons) == len(list((ROOT / "notebooks").glob("[0-9]*.ipynb")))
    total = sum(lesson.minutes for lesson in lessons)
    assert f"| **all** | {total} |" in (ROOT / guide.GUIDE).read_text()


def test_the_three_hour_agenda_fits_in_three_hours() -> None:
    text = guide.sections(ROOT)["three-hour agenda"]
    ends = text.splitlines()[-1]  # "| **ends** H:MM | | minutes |"
    assert int(ends.rsplit("|", 2)[-2]) <= 180


def test_the_playbook_quotes_what_the_lab_prints() -> None:
    text = guide.playbook()
    assert local_because("Docker is not running") in text  # the real line, not a paraphrase
    assert "401 Unauthorized" in text
    assert "quota" in text
    assert "may not list pods in namespace learner-08 (403 Forbidden)" in text
