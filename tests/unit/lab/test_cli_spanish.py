"""ironclad-lab in Spanish (issue 25 item 2, the `cli` area): in Spanish (`lab.i18n.use("es")`,
which `cli.main` calls with the settings' language) the command line's errors, their next
steps and what it prints for people come from lab/locale/es/LC_MESSAGES/cli.po; in English
(the tests' own language, restored after each test by the conftest) they are the English
source. Each test asserts words of the real
catalog, so a message that loses its translation fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab import cli
from lab.commands.stack import describe
from lab.errors import LabError
from lab.extras import require
from lab.settings import Settings, find_repo_root
from lab.targets import Endpoints

ROOT = find_repo_root()


def code_of(argv: list[str], settings: Settings) -> int | str | None:
    """The exit code of `ironclad-lab ARGV` run in this process (argparse raises SystemExit)."""
    try:
        return cli.main(argv, settings)
    except SystemExit as exc:
        return exc.code


def test_a_flag_off_its_target_is_a_usage_error_with_its_fix(
    language: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(ROOT, state_file_override=tmp_path / "state.json", lang=language)
    assert code_of(["up", "--target", "local", "--archive", "a.tar"], settings) == 2
    problem, fix = capsys.readouterr().err.splitlines()
    said = {
        "en": (
            "ironclad-lab up: error: --archive applies to the kind target only, and the target "
            "is local.",
            "→ Add --target kind, or drop --archive.",
        ),
        "es": (
            "ironclad-lab up: error: --archive solo se aplica al objetivo kind, y el objetivo "
            "es local.",
            "→ Añade --target kind, o quita --archive.",
        ),
    }
    assert (problem, fix) == said[language]
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_outside_a_workspace_the_error_says_how_to_make_one(
    language: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert code_of(["status"], Settings(tmp_path, lang=language)) == 1
    err = capsys.readouterr().err
    words = {
        "en": ("is not an Ironclad Lab workspace or checkout", "Make a workspace and work"),
        "es": ("no es un espacio de trabajo ni un checkout", "Crea un espacio de trabajo y"),
    }
    problem, fix = words[language]
    assert err.startswith(f"error: {tmp_path} {problem}")
    assert f"→ {fix}" in err
    assert "ironclad-lab init ~/ironclad" in err  # the command itself, in either language
    assert list(tmp_path.iterdir()) == []


def test_a_lesson_that_does_not_exist_is_refused_in_the_language(
    language: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's own words stay English (Python ships no Spanish for it); the lab's are not."""
    assert code_of(["reset", "--to", "9"], Settings(ROOT, lang=language)) == 2
    err = capsys.readouterr().err
    said = {"en": "'9' is not a lesson: use one of 0, 1", "es": "'9' no es una lección: usa"}
    assert f"argument --to: {said[language]}" in err


def test_no_running_lab_is_said_in_the_language(
    language: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(ROOT, state_file_override=tmp_path / "state.json", lang=language)
    assert code_of(["status"], settings) == 1
    said = {"en": "No lab is running (state file", "es": "No hay ningún lab en marcha (archivo"}
    assert capsys.readouterr().out.startswith(said[language])


def test_a_bad_namespace_in_the_environment_is_refused_with_the_rule(language: str) -> None:
    with pytest.raises(LabError) as refused:
        Settings.from_env({"LAB_REPO_ROOT": str(ROOT), "LAB_NAMESPACE": "Learner_07"})
    said = {
        "en": ("LAB_NAMESPACE='Learner_07' is not a valid namespace name.", "Use at most 58"),
        "es": (
            "LAB_NAMESPACE='Learner_07' no es un nombre de namespace válido.",
            "Usa como máximo 58",
        ),
    }
    problem, fix = said[language]
    assert refused.value.problem == problem
    assert refused.value.next_step.startswith(fix)


def test_up_labels_its_lines_in_the_language_and_keeps_the_column(language: str) -> None:
    endpoints = Endpoints("local", "http://h:1", ["http://h:2"], "http://h:3", None, "t0k")
    said = {
        "en": [
            "target:     local",
            "backend:    http://h:1",
            "  replica:  http://h:2",
            "prometheus: http://h:3",
            "grafana:    -",
            "chaos token: t0k",
        ],
        "es": [
            "objetivo:   local",
            "backend:    http://h:1",
            "  réplica:  http://h:2",
            "prometheus: http://h:3",
            "grafana:    -",
            "token de caos: t0k",
        ],
    }
    assert describe(endpoints).splitlines() == said[language]


def test_the_missing_extra_line_names_what_is_missing(
    language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = ["aiohttp", "babel", "jinja2", "jupyterlab", "kubernetes", "pandas"]
    monkeypatch.setattr("lab.extras.missing", lambda extra: absent)
    with pytest.raises(LabError) as refused:
        require("lab", "status")
    said = {
        "en": "`ironclad-lab status` needs the `lab` extra, which is not installed (aiohttp, "
        "babel, jinja2, jupyterlab and 2 more missing): pip install 'ironclad-lab[lab]'",
        "es": "`ironclad-lab status` necesita el extra `lab`, que no está instalado (faltan "
        "aiohttp, babel, jinja2, jupyterlab y 2 más): pip install 'ironclad-lab[lab]'",
    }
    assert str(refused.value) == said[language]


def test_without_babel_the_command_line_still_runs(tmp_path: Path) -> None:
    """A plain install has no Babel (it comes with the `lab` extra, which every subcommand
    needs): lab.cli, lab.i18n and the modules whose messages they translate import without it,
    and an error still comes out as one line, in English (nothing to read a catalog with)."""
    script = (
        "import sys; sys.modules['babel'] = None\n"  # `import babel` raises ImportError
        "from pathlib import Path\n"
        "from lab import cli\n"
        "from lab.settings import Settings\n"
        f"sys.exit(cli.main(['status'], Settings(repo_root=Path({str(tmp_path)!r}))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "is not an Ironclad Lab workspace or checkout" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "english", "spanish"),
    [
        (
            ["status"],  # LAB_REPO_ROOT names no workspace: refused before anything is made
            "is not an Ironclad Lab workspace or checkout",
            "no es un espacio de trabajo ni un checkout de Ironclad Lab",
        ),
        (  # argparse checks the number before main has the settings: it speaks LAB_LANG too
            ["reset", "--to", "9"],
            "'9' is not a lesson: use one of",
            "'9' no es una lección: usa una de estas:",
        ),
    ],
)
def test_lab_lang_es_makes_the_console_script_speak_spanish(
    argv: list[str], english: str, spanish: str, tmp_path: Path
) -> None:
    """End to end: the installed `ironclad-lab`, LAB_LANG=es in its environment (lab.cli.main
    reads it through the settings, issue 25 item 2); without it, in a C locale, English."""
    script = Path(sys.executable).with_name("ironclad-lab")
    base = {"PATH": str(script.parent), "LAB_REPO_ROOT": str(tmp_path), "LC_ALL": "C"}
    for environ, expected, absent in (
        ({**base, "LAB_LANG": "es"}, spanish, english),
        (base, english, spanish),
    ):
        done = subprocess.run(
            [str(script), *argv], capture_output=True, text=True, env=environ, timeout=120
        )
        assert done.returncode in (1, 2), done.stderr
        assert expected in done.stderr
        assert absent not in done.stderr
        assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_generate_writes_the_english_sources_whatever_the_language(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The instructor guide quotes the lab's own errors (its failure playbook): generated with
    LAB_LANG=es it must still be the English guide, so `--check` finds it current."""
    assert code_of(["generate", "guide", "--check"], Settings(ROOT, lang="es")) == 0, (
        capsys.readouterr().err
    )
