"""The %%cluster magic in a real IPython shell: explained on local, run (and failing) elsewhere."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from lab.magics import register
from lab.settings import Settings, find_repo_root
from lab.stack import State, write_state
from lab.targets import Endpoints

ShellFor = Callable[..., InteractiveShell]


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "state.json"


@pytest.fixture
def shell_for(state_file: Path) -> Iterator[ShellFor]:
    """An IPython shell with %%cluster registered for settings with `target` (LAB_TARGET)."""

    def make(target: str = "auto", repo_root: Path | None = None) -> InteractiveShell:
        instance = InteractiveShell.instance()
        settings = Settings(
            repo_root=repo_root or state_file.parent, target=target, state_file_override=state_file
        )
        register(instance, settings)
        return instance

    yield make
    InteractiveShell.clear_instance()


def running_lab(state_file: Path, target: str) -> None:
    endpoints = Endpoints(
        target=target, backend="u", backends=["u"], prometheus="p", chaos_token="t"
    )
    write_state(state_file, State(endpoints, os.getpid(), "ironclad-demo"))


def test_import_lab_registers_the_magic_inside_ipython(shell_for: ShellFor) -> None:
    shell = InteractiveShell.instance()
    shell.run_cell("import importlib, lab; importlib.reload(lab)")
    assert "cluster" in shell.magics_manager.magics["cell"]


def test_the_extension_registers_the_magic_without_import_lab(shell_for: ShellFor) -> None:
    shell = InteractiveShell.instance()
    assert "cluster" not in shell.magics_manager.magics["cell"]
    assert shell.extension_manager.load_extension("lab.magics") is None  # None: loaded
    assert "cluster" in shell.magics_manager.magics["cell"]
    assert "lab" not in shell.user_ns


CELL = """%%cluster
pods = env.k8s.pods("app=backend")
lab.check(len(pods) == 3, expected="three backend pods, all Running")
"""


def test_cell_is_explained_not_run_on_the_local_target(
    shell_for: ShellFor, state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = shell_for()
    running_lab(state_file, "local")
    result = shell.run_cell(CELL)
    assert result.success
    assert "pods" not in shell.user_ns
    out = capsys.readouterr().out
    assert out.startswith("⏭ Not run here — this cell needs a Kubernetes cluster")
    assert "target local" in out
    assert "env.k8s.pods('app=backend')" in out
    assert "three backend pods, all Running" in out


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize)")
def test_show_renders_the_named_objects_once(
    shell_for: ShellFor, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = shell_for("local", repo_root=find_repo_root())
    shell.run_cell("%%cluster --show PodDisruptionBudget/backend-pdb Deployment/nope\nx = 1\n")
    out = capsys.readouterr().out
    assert "the object it works on, PodDisruptionBudget/backend-pdb (rendered, not applied)" in out
    assert "kind: PodDisruptionBudget" in out
    assert "# Deployment/nope is not in the rendered manifests" in out
    assert "x" not in shell.user_ns


def test_show_without_renderable_manifests_still_explains(
    shell_for: ShellFor, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = shell_for("local")  # repo_root is an empty temp dir: nothing to render
    assert shell.run_cell("%%cluster --show Deployment/backend\nx = 1\n").success
    out = capsys.readouterr().out
    assert "Not run here" in out
    assert "# not rendered here:" in out


def test_cell_runs_on_kind(shell_for: ShellFor, state_file: Path) -> None:
    shell = shell_for()
    running_lab(state_file, "kind")
    assert shell.run_cell("%%cluster\nran = 6 * 7\n").success
    assert shell.user_ns["ran"] == 42


def test_a_failing_cell_fails_the_magic_cell(shell_for: ShellFor) -> None:
    shell = shell_for("kind")
    result = shell.run_cell("%%cluster\nraise ValueError('boom')\n")
    assert not result.success
    assert isinstance(result.error_in_exec, ValueError)


def test_explicit_local_target_skips_even_before_the_lab_runs(
    shell_for: ShellFor, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = shell_for("local")
    shell.run_cell("%%cluster\nran = True\n")
    assert "ran" not in shell.user_ns
    assert "target local" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize)")
def test_the_kernels_variables_fill_the_checks_and_objects_show_once(
    shell_for: ShellFor, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = shell_for("local", repo_root=find_repo_root())
    shell.user_ns["NAMESPACE"] = "team-a"
    cell = "%%cluster --show Deployment/backend\nlab.check(ok, expected=f'pods in {NAMESPACE}')\n"
    shell.run_cell(cell)
    shell.run_cell(cell)
    out = capsys.readouterr().out
    assert out.count("- pods in team-a") == 2
    assert "{NAMESPACE}" not in out
    assert out.count("Deployment/backend: shown above.") == 1  # the second cell names it


def test_explain_never_runs_the_cell_whatever_the_target(
    shell_for: ShellFor, state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = shell_for()
    running_lab(state_file, "kind")
    assert shell.run_cell("%%cluster --explain\nran = True\n").success
    assert "ran" not in shell.user_ns
    assert "Not run here" in capsys.readouterr().out
