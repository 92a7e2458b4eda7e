"""lab.extras: which extra a subcommand needs, read from the package's metadata; `--help` and
`--version` load nothing outside the standard library and the lab itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab import cli, extras

# What `importlib.metadata.requires` returns for a package shaped like ours.
LINES = [
    'litestar<3,>=2.25; extra == "backend"',
    'psycopg[binary]<4,>=3.3; extra == "backend"',
    'ironclad-lab[backend]; extra == "lab"',
    'pandas<4,>=3.1; extra == "lab"',
    'pytest<9.2,>=9.1; extra == "test"',
    "always-there>=1",
]


def test_an_extra_includes_the_extras_of_the_package_it_names() -> None:
    assert extras.requirements("lab", LINES) == {"litestar", "psycopg", "pandas"}
    assert extras.requirements("backend", LINES) == {"litestar", "psycopg"}
    assert extras.requirements("test", LINES) == {"pytest"}


def test_the_installed_lab_extra_is_complete() -> None:
    """The environment the tests run in has every subcommand's extra (noxfile: tests session)."""
    assert extras.missing(cli.COMMANDS_EXTRA) == []


def test_a_missing_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras, "missing", lambda extra: ["pandas", "papermill"])
    with pytest.raises(extras.ExtraMissingError) as info:
        extras.require("lab", "run")
    message = str(info.value)
    assert "\n" not in message
    assert "`ironclad-lab run` needs the `lab` extra" in message
    assert "(pandas, papermill missing)" in message
    assert message.endswith("pip install 'ironclad-lab[lab]'")


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_but_the_standard_library(flag: str) -> None:
    probe = (
        "import sys\n"
        "from lab import cli\n"
        "try:\n"
        f"    cli.main([{flag!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "top = {name.partition('.')[0] for name in sys.modules}\n"
        "extra = top - set(sys.stdlib_module_names) - {'lab', '__main__'}\n"
        "print('LOADED', *sorted(extra), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    # an editable install's path finder (setuptools' __editable__ module) is not an import of ours
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED"))
    loaded = [name for name in line.split()[1:] if not name.startswith("__editable__")]
    assert loaded == [], f"`ironclad-lab {flag}` imported {loaded}"
