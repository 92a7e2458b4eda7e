"""The learner's language, chosen once and honoured end to end (issue 25): LAB_LANG, else the
workspace's (`init --lang`), else the locale's, else English; `--lang` on `run` and `init` wins;
the entry points speak it; a run takes notebooks/<lang>/ and tells its kernels and its summary;
`workshop status` shows the language each learner's notebooks ran in (workshop/test_status.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from lab import cli, i18n, magics, session
from lab.errors import LabError, LabNotRunningError
from lab.runner.kernels import kernel_environ
from lab.runner.lanes import Share
from lab.runner.report import NotebookResult, RunResult
from lab.runner.run import RunOptions, _Lane
from lab.settings import WORKSPACE_MARKER, Settings, find_repo_root

ROOT = find_repo_root()
ENGLISH = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))


def workspace_at(path: Path, marker: dict[str, Any]) -> Path:
    """A workspace as lab.settings.is_workspace sees one: manifests/ and the marker."""
    (path / "manifests").mkdir(parents=True)
    (path / WORKSPACE_MARKER).write_text(json.dumps(marker))
    return path


@pytest.mark.parametrize(
    ("environ", "recorded", "expected"),
    [
        ({}, None, "en"),
        ({"LANG": "es_MX.UTF-8"}, None, "es"),
        ({"LANGUAGE": "fr:es", "LANG": "en_US.UTF-8"}, None, "es"),  # gettext's order
        ({"LANG": "es_ES.UTF-8"}, "en", "en"),  # the workspace's beats the locale's
        ({"LANG": "en_US.UTF-8"}, "es", "es"),
        ({"LAB_LANG": "en", "LANG": "es_ES.UTF-8"}, "es", "en"),  # LAB_LANG beats both
        ({"LAB_LANG": "es"}, None, "es"),
        ({"LAB_LANG": "", "LC_ALL": "es_AR.UTF-8"}, None, "es"),  # empty: unset
    ],
)
def test_lab_lang_else_the_workspaces_else_the_locales_else_english(
    tmp_path: Path, environ: dict[str, str], recorded: str | None, expected: str
) -> None:
    marker = {"version": "0.1.0", **({"language": recorded} if recorded else {})}
    root = workspace_at(tmp_path / "ws", marker)
    settings = Settings.from_env({**environ, "LAB_REPO_ROOT": str(root)})
    assert settings.lang == expected
    notebooks = root / "notebooks"
    assert settings.notebooks_dir == (notebooks if expected == "en" else notebooks / expected)


def test_a_bad_lab_lang_names_the_languages_the_lab_speaks() -> None:
    with pytest.raises(LabError, match=r"LAB_LANG='fr' is not a language") as info:
        Settings.from_env({"LAB_LANG": "fr"})
    assert "en (English), es (español)" in info.value.next_step
    done = subprocess.run(  # the CLI: one line, exit 1 (an error of the lab), no traceback
        [sys.executable, "-m", "lab", "status"],
        cwd=ROOT,
        env={**os.environ, "LAB_LANG": "fr"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == cli.EXIT_ERROR, done.stderr
    assert done.stderr.startswith("error: LAB_LANG='fr' is not a language the lab speaks.")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("marker", ['{"language": "klingon"}', "{not json"])
def test_a_workspace_marker_with_a_bad_language_is_named(tmp_path: Path, marker: str) -> None:
    root = workspace_at(tmp_path / "ws", {})
    (root / WORKSPACE_MARKER).write_text(marker)
    with pytest.raises(LabError, match=WORKSPACE_MARKER):
        Settings.from_env({"LAB_REPO_ROOT": str(root)})
    assert Settings.from_env({"LAB_REPO_ROOT": str(root), "LAB_LANG": "es"}).lang == "es"


@pytest.mark.parametrize("command", [["run", "--target", "local"], ["init", "{ws}"]])
def test_an_unknown_lang_flag_is_a_usage_error_and_nothing_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    argv = [part.format(ws=tmp_path / "ws") for part in command]
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--lang", "fr"], Settings(repo_root=ROOT))
    assert exited.value.code == cli.EXIT_USAGE
    assert "--lang: invalid choice: 'fr'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[RunOptions]:
    """What `ironclad-lab run` hands to the runner (which is not started)."""
    handed: list[RunOptions] = []
    monkeypatch.setattr(
        "lab.runner.run.run_lab", lambda options, settings, hook=None: handed.append(options) or 0
    )
    return handed


def test_run_lang_es_runs_the_spanish_notebooks_with_the_shared_solutions(
    runs: list[RunOptions],
) -> None:
    english = Settings(repo_root=ROOT)
    assert cli.main(["run", "--target", "local", "--solutions"], english) == 0
    assert cli.main(["run", "--target", "local", "--solutions", "--lang", "es"], english) == 0
    assert i18n.current() == "es"  # cli.main speaks the language it was given
    source, spanish = runs
    assert (source.language, spanish.language) == ("en", "es")
    assert [p.name for p in spanish.notebooks] == [p.name for p in source.notebooks] == ENGLISH
    assert {p.parent for p in spanish.notebooks} == {ROOT / "notebooks" / "es"}
    assert {p.parent for p in source.notebooks} == {ROOT / "notebooks"}
    assert spanish.solutions == source.solutions  # notebooks/solutions/, one for both
    assert spanish.solutions


def test_the_language_of_the_settings_picks_the_notebooks_without_a_flag(
    runs: list[RunOptions],
) -> None:
    """LAB_LANG, a Spanish workspace or locale: the settings say es, `run` needs no flag."""
    assert cli.main(["run", "--notebooks", "03"], Settings(repo_root=ROOT, lang="es")) == 0
    (options,) = runs
    assert options.notebooks == [ROOT / "notebooks" / "es" / "03-postgres-statefulset.ipynb"]
    assert options.language == "es"


def test_init_lang_es_records_it_and_carries_every_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ws"
    assert cli.main(["init", str(target), "--lang", "es"], Settings(repo_root=tmp_path)) == 0
    assert "jupyter lab notebooks/es/" in capsys.readouterr().out
    assert json.loads((target / WORKSPACE_MARKER).read_text())["language"] == "es"
    assert Settings.from_env({"LAB_REPO_ROOT": str(target)}).lang == "es"
    spanish = sorted(p.name for p in (target / "notebooks" / "es").glob("[0-9]*.ipynb"))
    assert spanish == ENGLISH == sorted(p.name for p in (target / "notebooks").glob("[0-9]*.ipynb"))
    catalogs = target / "notebooks" / "locale" / "es" / "LC_MESSAGES"  # lab.i18n.translate's
    assert sorted(p.stem for p in catalogs.glob("*.po")) == [Path(n).stem for n in ENGLISH]
    assert (target / "notebooks" / "solutions").is_dir()

    saved = target / "notebooks" / "es" / "01-namespace.ipynb"
    saved.write_text("the learner's work")
    args = ["init", "--exist-ok", str(target), "--lang", "en"]
    assert cli.main(args, Settings(repo_root=tmp_path)) == 0  # another language, work kept
    assert Settings.from_env({"LAB_REPO_ROOT": str(target)}).lang == "en"
    assert saved.read_text() == "the learner's work"


def test_init_without_a_flag_records_the_language_of_the_settings(tmp_path: Path) -> None:
    assert cli.main(["init", str(tmp_path / "ws")], Settings(repo_root=tmp_path, lang="es")) == 0
    assert json.loads((tmp_path / "ws" / WORKSPACE_MARKER).read_text())["language"] == "es"


def test_the_kernels_and_the_lanes_result_get_the_runs_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert kernel_environ(Path("s.json"), "local", "es")["LAB_LANG"] == "es"
    assert kernel_environ(Path("s.json"), "local")["LAB_LANG"] == "en"  # never the caller's
    asked: dict[str, Any] = {}

    def execute(*args: Any, **kwargs: Any) -> RunResult:
        asked.update(kwargs)
        return RunResult("local", [], language=kwargs["language"])

    monkeypatch.setattr("lab.runner.execute.execute_notebooks", execute)
    up = SimpleNamespace(target="local", requested="local", state_file=Path("s.json"), state=None)
    options = RunOptions("local", [], Path("report"), language="es")
    lane = _Lane(Share([], 0), up, options)  # type: ignore[arg-type]
    assert lane.kernels.environ is not None
    assert lane.kernels.environ["LAB_LANG"] == "es"
    lane._run_share()
    assert asked["language"] == "es"


def test_the_summary_says_the_language() -> None:
    notebooks = [NotebookResult("01-namespace", status="passed")]
    assert RunResult("local", notebooks, language="es").summary()["language"] == "es"
    assert RunResult("local", notebooks).summary()["language"] == "en"


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_the_notebook_entry_points_speak_the_settings_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: InteractiveShell
) -> None:
    """The kernel extension (headless runs and JupyterLab) and lab.connect()."""
    spanish = Settings(repo_root=tmp_path, lang="es", state_file_override=tmp_path / "s.json")
    monkeypatch.setattr("lab.magics.get_settings", lambda: spanish)
    magics.load_ipython_extension(shell)
    assert i18n.current() == "es"
    i18n.use(i18n.SOURCE_LANGUAGE)
    with pytest.raises(LabNotRunningError):
        session.connect(start=False, settings=spanish)
    assert i18n.current() == "es"
