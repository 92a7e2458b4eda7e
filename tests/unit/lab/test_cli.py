"""`ironclad-lab` / `python -m lab`: one parser tree, status/down through the state file."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import yaml

from lab import cli, commands
from lab.commands.stack import describe
from lab.settings import Settings, find_repo_root
from lab.stack import State, exclusive, pid_file, write_state
from lab.targets import Endpoints

ENDPOINTS = Endpoints(
    target="local",
    backend="http://127.0.0.1:1",
    backends=["http://127.0.0.1:1", "http://127.0.0.1:2"],
    prometheus="http://127.0.0.1:3",
    grafana=None,
    chaos_token="tok",
)


def settings(tmp_path: Path) -> Settings:
    return Settings(repo_root=find_repo_root(), state_file_override=tmp_path / "state.json")


def test_up_arguments() -> None:
    args = cli.parser().parse_args(
        ["up", "--target", "local", "--replicas", "2", "--json", "--state-file", "s.json"]
    )
    assert (args.command, args.target, args.replicas, args.output) == ("up", "local", 2, "json")
    assert args.state_file == Path("s.json")


def test_every_subcommand_has_a_handler() -> None:
    tree = cli.parser()
    subparsers = next(a for a in tree._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {
        "up",
        "down",
        "status",
        "run",
        "render",
        "images",
        "reset",
        "workshop",
        "generate",
        "kernelspec",
        "init",
        "completion",
    }
    for name, sub in subparsers.choices.items():
        assert callable(sub.get_default("handler")), name


def test_target_defaults_to_the_settings_lab_target() -> None:
    from_env = Settings.from_env({"LAB_TARGET": "local"})
    for command in ("up", "run"):
        assert commands.target(cli.parser().parse_args([command]), from_env) == "local"
        given = cli.parser().parse_args([command, "--target", "kind"])
        assert commands.target(given, from_env) == "kind"
    assert commands.target(cli.parser().parse_args(["up"]), Settings.from_env({})) == "auto"


def test_unknown_target_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.parser().parse_args(["up", "--target", "minikube"])
    assert info.value.code == 2
    assert "invalid choice: 'minikube'" in capsys.readouterr().err


def test_version_names_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ironclad-lab {version('ironclad-lab')}"


def test_a_second_lab_is_refused_with_the_command_to_stop_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    write_state(state, State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    assert cli.main(["up", "--target", "local", "--state-file", str(state)]) == 1
    err = capsys.readouterr().err
    assert f"already runs (pid {os.getpid()}" in err
    assert "ironclad-lab down" in err


def test_status_without_a_lab_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status"], settings(tmp_path)) == 1
    assert "No lab is running" in capsys.readouterr().out


def test_status_shows_target_pid_and_endpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(tmp_path / "state.json", State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    assert cli.main(["status", "--json"], settings(tmp_path)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["target"], shown["pid"], shown["prometheus"]) == (
        "local",
        os.getpid(),
        ENDPOINTS.prometheus,
    )
    assert cli.main(["status"], settings(tmp_path)) == 0
    assert f"pid:        {os.getpid()}" in capsys.readouterr().out


def test_down_stops_the_process_named_in_the_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_state(tmp_path / "state.json", State(ENDPOINTS, process.pid, "ironclad-demo"))
        assert cli.main(["down"], settings(tmp_path)) == 0
        assert process.wait(timeout=10) == -15  # ended by SIGTERM
        assert f"pid {process.pid}" in capsys.readouterr().out
        assert cli.main(["down"], settings(tmp_path)) == 0
        assert "No lab is running" in capsys.readouterr().out
    finally:
        process.kill()
        process.wait()


def test_a_stale_state_file_whose_pid_a_stranger_reuses_is_not_the_lab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20 item 3: after a crash the state file's pid belongs to an unrelated process (a
    real one here), which started after the `lab up` that wrote the file: `status` must not
    report it as the lab, `down` must not signal it (the `up` side: test_lab_up_lifecycle)."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lab_up_started = psutil.Process(stranger.pid).create_time() - 3600  # an hour earlier
        stale = State(ENDPOINTS, stranger.pid, "ironclad-demo", started=lab_up_started)
        write_state(tmp_path / "state.json", stale)
        assert cli.main(["status"], settings(tmp_path)) == 1
        assert "No lab is running" in capsys.readouterr().out
        assert not (tmp_path / "state.json").exists()  # stale: removed
        write_state(tmp_path / "state.json", stale)
        assert cli.main(["down"], settings(tmp_path)) == 0
        assert "No lab is running" in capsys.readouterr().out
        assert stranger.poll() is None, "down signalled a process that is not the lab"
        # the same pid with its own start time is the lab: down stops it
        write_state(tmp_path / "state.json", replace(stale, started=lab_up_started + 3600))
        assert cli.main(["down"], settings(tmp_path)) == 0
        assert f"Stopped the local lab (pid {stranger.pid})" in capsys.readouterr().out
        assert stranger.wait(timeout=10) == -15
    finally:
        stranger.kill()
        stranger.wait()


def test_down_while_a_lab_up_is_starting_says_so_and_stops_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `lab up` not ready yet holds the lock and has a pid file but no state file: `down`
    neither claims that no lab runs nor touches its processes."""
    state_file = tmp_path / "state.json"
    pid_file(state_file).write_text('{"owner": 1, "groups": [], "paths": []}')
    with exclusive(state_file, "target=local"):
        assert cli.main(["down"], settings(tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"A `lab up` is starting on {state_file} (pid {os.getpid()}, target=local)" in err
    assert "run ironclad-lab down again once it is ready" in err
    assert pid_file(state_file).exists()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize)")
def test_render_prints_the_kind_overlay_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["render", "--target", "kind"]) == 0
    objects = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Deployment", "StatefulSet", "NetworkPolicy"} <= kinds


def test_describe_lists_every_endpoint() -> None:
    text = describe(ENDPOINTS)
    for value in (*ENDPOINTS.backends, ENDPOINTS.prometheus, "tok"):
        assert value in text


def test_help_of_python_m_lab_and_of_python_m_backend() -> None:
    for module in ("lab", "backend"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "usage:" in done.stdout


def test_lab_exposes_only_its_declared_public_api() -> None:
    import lab

    for name, owner in lab.PUBLIC.items():
        value = getattr(lab, name)
        assert getattr(value, "__name__", owner) in (owner, name), name
    from lab import exercises

    assert (lab.verify, lab.solution) == (exercises.verify, exercises.solution)
    assert {"verify", "solution"} <= set(lab.__all__)
    with pytest.raises(AttributeError, match="no attribute 'procs'"):
        lab.__getattr__("procs")


def test_ironclad_lab_is_the_only_entry_point() -> None:
    """Issue 24 item 5: no `python -m lab.<module>` besides `python -m lab` itself."""
    package = Path(cli.__file__).parent
    mains = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if '__name__ == "__main__"' in path.read_text()
    )
    assert mains == ["__main__.py"]


def exit_code(argv: list[str], settings: Settings) -> int | str | None:
    """What `ironclad-lab ARGV` exits with (argparse's own usage errors raise SystemExit)."""
    try:
        return cli.main(argv, settings)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "argv",
    [
        ["reset", "--to", "42"],  # no such lesson (0-7 and 99 are)
        ["up", "--target", "local", "--archive", "x.tar"],  # only kind loads an archive
        ["run", "--notebooks", "nosuchnotebook"],
    ],
)
def test_usage_errors_exit_2_before_anything_happens(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(argv, settings(tmp_path)) == cli.EXIT_USAGE == 2
    err = capsys.readouterr().err
    assert f"ironclad-lab {argv[0]}: error: " in err
    assert "Traceback" not in err
    assert not (tmp_path / "state.json").exists()


def test_a_lab_error_exits_1_from_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same LabError (here: no lab is running) is exit 1 whichever command meets it."""
    for argv in (["reset", "--to", "1"], ["down"]):
        state_file = tmp_path / "state.json"
        pid_file(state_file).write_text('{"owner": 1, "groups": [], "paths": []}')
        with exclusive(state_file, "target=local"):  # down: a starting `up`; reset: none runs
            assert cli.main(argv, settings(tmp_path)) == cli.EXIT_ERROR == 1
        assert capsys.readouterr().err.startswith("error: ")


def test_kernelspec_is_a_subcommand_that_needs_no_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = Settings(repo_root=tmp_path)  # not a checkout: kernelspec works anyway
    assert cli.main(["kernelspec", "--prefix", str(tmp_path / "prefix")], nowhere) == 0
    spec = tmp_path / "prefix" / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    assert "--ext=lab.magics" in json.loads(spec.read_text())["argv"]
    assert str(spec.parent) in capsys.readouterr().out
    assert cli.main(["generate", "rules", "--check"], nowhere) == cli.EXIT_ERROR
    assert "not an Ironclad Lab workspace or checkout" in capsys.readouterr().err
