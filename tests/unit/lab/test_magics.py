"""The %%cluster magic in a real IPython shell: skipped on local, run (and failing) elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from lab.magics import register
from lab.session import State, write_state
from lab.settings import get_settings
from lab.targets import Endpoints


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    instance = InteractiveShell.instance()
    register(instance)
    yield instance
    InteractiveShell.clear_instance()


@pytest.fixture
def lab_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state.json"
    monkeypatch.setenv("LAB_STATE_FILE", str(state))
    monkeypatch.delenv("LAB_TARGET", raising=False)
    get_settings.cache_clear()
    yield state
    get_settings.cache_clear()


def running_lab(state_file: Path, target: str) -> None:
    endpoints = Endpoints(
        target=target, backend="u", backends=["u"], prometheus="p", chaos_token="t"
    )
    write_state(state_file, State(endpoints, os.getpid(), "ironclad-demo"))


def test_import_lab_registers_the_magic_inside_ipython(shell: InteractiveShell) -> None:
    shell.run_cell("import importlib, lab; importlib.reload(lab)")
    assert "cluster" in shell.magics_manager.magics["cell"]


def test_cell_is_skipped_with_one_line_on_the_local_target(
    shell: InteractiveShell, lab_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running_lab(lab_env, "local")
    result = shell.run_cell("%%cluster\nran = True\n")
    assert result.success
    assert "ran" not in shell.user_ns
    assert capsys.readouterr().out == "skipped: needs a Kubernetes cluster (target=local)\n"


def test_cell_runs_on_kind(shell: InteractiveShell, lab_env: Path) -> None:
    running_lab(lab_env, "kind")
    assert shell.run_cell("%%cluster\nran = 6 * 7\n").success
    assert shell.user_ns["ran"] == 42


def test_a_failing_cell_fails_the_magic_cell(
    shell: InteractiveShell, lab_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_TARGET", "kind")
    get_settings.cache_clear()
    result = shell.run_cell("%%cluster\nraise ValueError('boom')\n")
    assert not result.success
    assert isinstance(result.error_in_exec, ValueError)


def test_explicit_local_target_skips_even_before_the_lab_runs(
    shell: InteractiveShell,
    lab_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LAB_TARGET", "local")
    get_settings.cache_clear()
    shell.run_cell("%%cluster\nran = True\n")
    assert "ran" not in shell.user_ns
    assert "target=local" in capsys.readouterr().out
