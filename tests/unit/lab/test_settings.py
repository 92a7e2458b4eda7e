"""lab.settings: defaults, LAB_* overrides and messages for bad values."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.settings import Settings, find_repo_root, is_checkout, peer_namespace
from lab.targets import choose

REPO = Path(__file__).resolve().parents[3]


def test_defaults_put_the_state_file_under_the_repo_build_dir() -> None:
    settings = Settings.from_env({})
    assert settings.repo_root == REPO
    assert settings.target == "auto"
    assert settings.namespace == "ironclad-demo"
    assert settings.replicas == 3
    assert settings.state_file == REPO / "build" / "lab-state.json"
    assert settings.kind_config == REPO / "manifests" / "kind" / "cluster.yaml"


def test_environment_overrides_every_setting(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LAB_TARGET": "local",
            "LAB_STATE_FILE": str(tmp_path / "s"),
            "LAB_REPLICAS": "5",
            "LAB_READY_TIMEOUT": "7.5",
            "LAB_REPO_ROOT": str(tmp_path),
            "LAB_RESTART_DELAY": "0.5",
            "LAB_KIND_VERSION": "v0.29.0",
        }
    )
    assert (settings.target, settings.replicas) == ("local", 5)
    assert settings.state_file == tmp_path / "s"
    assert settings.ready_timeout == 7.5
    assert settings.restart_delay == 0.5
    assert settings.kind_version == "v0.29.0"
    assert settings.local_prometheus_config == (
        tmp_path / "manifests" / "monitoring" / "local" / "prometheus.yml"
    )


def test_unknown_target_says_which_ones_exist() -> None:
    settings = Settings.from_env({"LAB_TARGET": "minikube"})  # checked where it is resolved
    with pytest.raises(LabError, match="auto, local, kind, cluster") as info:
        choose(settings.target, settings)
    assert "LAB_TARGET" in info.value.problem  # where the name came from


@pytest.mark.parametrize("raw", ["three", "-1"])
def test_bad_numbers_name_the_variable(raw: str) -> None:
    with pytest.raises(LabError, match="LAB_REPLICAS"):
        Settings.from_env({"LAB_REPLICAS": raw})


def test_repo_root_is_found_upwards_or_falls_back_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_repo_root(REPO / "lab" / "settings.py") == REPO
    monkeypatch.chdir(tmp_path)
    assert find_repo_root(tmp_path / "a" / "b") == tmp_path


def test_namespace_comes_from_lab_namespace_and_names_its_peer() -> None:
    settings = Settings.from_env({"LAB_NAMESPACE": "learner-07", "LAB_IMAGE": "r.example/b:1"})
    assert settings.namespace == "learner-07"
    assert settings.registry_image == "r.example/b:1"
    assert peer_namespace(settings.namespace, shared=True) == "learner-07-peer"
    assert peer_namespace(settings.namespace, shared=False) == "default"


@pytest.mark.parametrize(
    "name", ["Learner-07", "learner_07", "-learner", "learner-", "a.b", "x" * 59, " "]
)
def test_invalid_namespace_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(LabError, match=r"LAB_NAMESPACE=.*is not a valid namespace name") as info:
        Settings.from_env({"LAB_NAMESPACE": name})
    assert "at most 58 characters" in info.value.next_step


def test_the_longest_valid_namespace_leaves_room_for_its_peer() -> None:
    longest = Settings.from_env({"LAB_NAMESPACE": "x" * 58}).namespace
    assert peer_namespace(longest, shared=True) == "x" * 58 + "-peer"


def test_the_checkout_is_found_upwards_from_a_folder_inside_it(tmp_path: Path) -> None:
    root = find_repo_root()
    assert is_checkout(root)
    assert find_repo_root(root / "notebooks" / "solutions") == root
    assert find_repo_root(tmp_path) == Path.cwd()  # nothing above: the CLI refuses (below)
    assert not is_checkout(tmp_path)


def test_outside_a_checkout_the_cli_says_so_and_creates_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lab", "up", "--target", "local"],
        cwd=tmp_path,
        env={**os.environ, "LAB_REPO_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert f"{tmp_path} is not an Ironclad Lab workspace or checkout" in done.stderr
    assert "Nothing was created." in done.stderr
    assert list(tmp_path.iterdir()) == []


# The entry points: where the environment is read (once), to be passed down from there.
ENTRY_POINTS = {
    ("cli.py", "main"),  # every ironclad-lab command
    ("session.py", "connect"),  # a notebook's lab.connect()
    ("session.py", "session_settings"),  # the notebook side before (or without) a connect()
    ("magics.py", "load_ipython_extension"),  # a kernel's %%cluster
}


def settings_fetched(source: str) -> list[tuple[int, str]]:
    """(line, enclosing function) of each `get_settings()` call in `source`."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "get_settings"
                ):
                    found.append((node.lineno, function.name))
    return found


def test_only_entry_points_read_settings_from_the_environment() -> None:
    """Helpers take settings as a parameter (issue 24 item 5): no `settings or get_settings()`
    fallback below the entry points."""
    lab = REPO / "lab"
    found = {
        (str(path.relative_to(lab)), function)
        for path in lab.rglob("*.py")
        if path.name != "settings.py"
        for _, function in settings_fetched(path.read_text())
    }
    assert found <= ENTRY_POINTS, sorted(found - ENTRY_POINTS)
    assert settings_fetched("def f():\n    s = s or get_settings()\n") == [(2, "f")]
