"""`ironclad-lab` follows kubectl's and helm's habits (issue 23 item 6), through the real command
line: `-n`, `-o json|yaml` (and `--json`), flags refused where they do not apply (exit 2), no
abbreviated flags, examples and the LAB_* variables in `--help`, shell completion."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import cli
from lab.settings import ENVIRONMENT, Settings, find_repo_root
from lab.stack import State, write_state
from lab.targets import Endpoints

ROOT = find_repo_root()
ENDPOINTS = Endpoints(
    "local", "http://127.0.0.1:1", ["http://127.0.0.1:1"], "http://x:2", None, "t"
)
SCRIPTED = [["status"], ["images"], ["render"], ["workshop", "status"], ["up"]]


def ironclad_lab(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def code_of(argv: list[str], settings: Settings) -> int | str | None:
    """The exit code of `ironclad-lab ARGV` run in this process (argparse raises SystemExit)."""
    try:
        return cli.main(argv, settings)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("command", SCRIPTED, ids=" ".join)
def test_every_command_a_script_reads_has_output_json_and_yaml(command: list[str]) -> None:
    for flags in (["-o", "json"], ["--output", "yaml"], ["--json"]):
        args = cli.parser().parse_args([*command, *flags])
        assert args.output == ("yaml" if "yaml" in flags else "json")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="render runs kubectl kustomize")
def test_render_minus_n_and_output_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["render", "--target", "cluster", "-n", "learner-07", "--image", "reg.example/b:1"]
    assert cli.main([*argv, "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    namespaced = [o for o in listed["items"] if "namespace" in o["metadata"]]
    assert namespaced
    assert {o["metadata"]["namespace"] for o in namespaced} == {"learner-07"}
    assert cli.main(argv) == 0  # the default: the same objects as YAML documents
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [named(o) for o in documents] == [named(o) for o in listed["items"]]


def named(obj: dict[str, Any]) -> tuple[str, str, str]:
    """An object's kind, namespace and name (its Secrets' values are generated per render)."""
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def test_status_output_yaml_and_json_say_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(repo_root=ROOT, state_file_override=tmp_path / "state.json")
    assert cli.main(["status", "-o", "json"], settings) == 1  # none runs: null, exit 1
    assert json.loads(capsys.readouterr().out) is None
    write_state(tmp_path / "state.json", State(ENDPOINTS, os.getpid(), "ironclad-demo"))
    assert cli.main(["status", "-o", "json"], settings) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert cli.main(["status", "-o", "yaml"], settings) == 0
    assert yaml.safe_load(capsys.readouterr().out) == as_json
    assert cli.main(["status", "--json"], settings) == 0
    assert json.loads(capsys.readouterr().out) == as_json
    assert as_json["pid"] == os.getpid()


def test_images_output_yaml_is_the_json_list(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(repo_root=ROOT)
    assert cli.main(["images", "--json"], settings) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert cli.main(["images", "-o", "yaml"], settings) == 0
    assert yaml.safe_load(capsys.readouterr().out) == as_json
    assert {"ref", "pin", "why", "used_by", "pullable"} <= set(as_json[0])


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["up", "--target", "local", "--image", "reg/b:1"], "--image"),
        (["up", "--target", "kind", "--image", "reg/b:1"], "--image"),
        (["up", "--target", "kind", "--context", "other"], "--context"),
        (["up", "--target", "local", "--keep"], "--keep"),
        (["up", "--target", "kind", "--kubeconfig", "k.yaml"], "--kubeconfig"),
        (["up", "--archive", "a.tar"], "--archive"),  # auto may not pick kind
        (["up", "--target", "cluster", "--image", "r/b:1", "--archive", "a.tar"], "--archive"),
        (["run", "--target", "local", "--archive", "a.tar"], "--archive"),
        (["render", "--target", "kind", "--image", "reg/b:1"], "--image"),  # kind builds its own
        (["up", "--target", "kind", "--replicas", "2"], "--replicas"),  # the HPA decides
    ],
)
def test_a_flag_where_it_does_not_apply_is_a_usage_error(
    argv: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(repo_root=ROOT, state_file_override=tmp_path / "state.json")
    assert code_of(argv, settings) == 2
    err = capsys.readouterr().err
    assert f"ironclad-lab {argv[0]}: error: {flag} applies to the " in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--imag", "reg/b:1"],  # no abbreviations: --image and --archive are whole words
        ["status", "--namespace", "x"],  # status reads the recorded identity
        ["reset", "--to", "3", "--image", "x"],
        ["workshop", "status", "-n", "x"],
        ["up", "--images", "a.tar"],  # renamed --archive: one flag, one meaning
    ],
)
def test_a_flag_a_command_does_not_have_exits_2(argv: list[str]) -> None:
    done = ironclad_lab(*argv)
    assert done.returncode == 2
    assert "unrecognized arguments" in done.stderr


def test_help_shows_examples_and_every_lab_variable() -> None:
    helped = ironclad_lab("--help")
    assert helped.returncode == 0
    for name in ENVIRONMENT:
        assert f"\n  {name} " in helped.stdout, name
    assert "examples:\n  ironclad-lab " in helped.stdout
    tree = cli.parser()
    (commands,) = (a for a in tree._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():  # every command, a new one too
        examples = command.format_help().partition("\nexamples:\n  ")[2]
        assert "ironclad-lab " in examples, name


class Recording(Mapping[str, str]):
    """An empty environment that records every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_the_variables_in_help_are_the_ones_the_settings_read() -> None:
    environment = Recording()
    Settings.from_env(environment)
    assert environment.asked == set(ENVIRONMENT)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_commands_and_flags(tmp_path: Path) -> None:
    script = ironclad_lab("completion", "bash")
    assert script.returncode == 0, script.stderr
    (tmp_path / "complete.bash").write_text(script.stdout)
    probe = f"""
source {tmp_path / "complete.bash"}
complete -p ironclad-lab
COMP_WORDS=(ironclad-lab wor); COMP_CWORD=1; COMP_LINE="ironclad-lab wor"; COMP_POINT=16
"$(complete -p ironclad-lab | sed -E 's/.*-F ([^ ]+).*/\\1/')" ironclad-lab wor ironclad-lab
echo "commands: ${{COMPREPLY[*]}}"
COMP_WORDS=(ironclad-lab up --tar); COMP_CWORD=2; COMP_LINE="ironclad-lab up --tar"; COMP_POINT=22
"$(complete -p ironclad-lab | sed -E 's/.*-F ([^ ]+).*/\\1/')" ironclad-lab --tar up
echo "flags: ${{COMPREPLY[*]}}"
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "commands: workshop" in done.stdout
    assert "flags: --target" in done.stdout
