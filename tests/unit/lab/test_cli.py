"""`python -m lab`: argument parsing, `run` delegation and refusing a second lab."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from lab.__main__ import describe, main, parser
from lab.session import State, write_state
from lab.targets import Endpoints

ENDPOINTS = Endpoints(
    target="local",
    backend="http://127.0.0.1:1",
    backends=["http://127.0.0.1:1", "http://127.0.0.1:2"],
    prometheus="http://127.0.0.1:3",
    grafana=None,
    chaos_token="tok",
)


def test_up_arguments() -> None:
    args = parser().parse_args(
        ["up", "--target", "local", "--replicas", "2", "--json", "--state-file", "s.json"]
    )
    assert (args.command, args.target, args.replicas, args.json) == ("up", "local", 2, True)
    assert args.state_file == Path("s.json")


def test_unknown_target_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["up", "--target", "minikube"])
    assert info.value.code == 2
    assert "invalid choice: 'minikube'" in capsys.readouterr().err


def test_run_is_delegated_with_the_remaining_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    stand_in = types.ModuleType("lab.run")
    stand_in.main = lambda argv: seen.append(list(argv)) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lab.run", stand_in)
    assert main(["run", "--target", "local", "--notebooks", "03,06"]) == 7
    assert seen == [["--target", "local", "--notebooks", "03,06"]]


def test_a_second_lab_is_refused_with_the_pid_to_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    write_state(state, State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    assert main(["up", "--target", "local", "--state-file", str(state)]) == 1
    err = capsys.readouterr().err
    assert f"already runs (pid {os.getpid()}" in err
    assert f"kill {os.getpid()}" in err


def test_describe_lists_every_endpoint() -> None:
    text = describe(ENDPOINTS)
    for value in (*ENDPOINTS.backends, ENDPOINTS.prometheus, "tok", "Ctrl-C"):
        assert value in text
