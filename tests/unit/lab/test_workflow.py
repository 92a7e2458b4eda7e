"""The GitHub workflow cannot run here: check what can be checked offline. Every `ironclad-lab`,
`python -m lab` and `nox -s lab --` command in it must parse with lab.cli's own parser (a renamed
or dropped flag fails here, not on the runner), and the workshop job must cover the classroom
path end to end."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from lab import cli
from lab.settings import find_repo_root

WORKFLOW = find_repo_root() / ".github" / "workflows" / "lab.yml"
# A lab command, up to the first shell operator (pipe, redirection, ;, &&, ||).
LAB_COMMAND = re.compile(r"(?:python -m lab|ironclad-lab|nox -s lab --)\s([^|;&>]*)")


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def lab_commands(script: str) -> list[list[str]]:
    """The argv of every lab command in a `run:` script (continuation lines joined); `nox -s
    lab -- ARGS` is `ironclad-lab run ARGS` (noxfile.py)."""
    joined = script.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        for match in LAB_COMMAND.finditer(line):
            argv = shlex.split(match[1])
            found.append(["run", *argv] if match[0].startswith("nox") else argv)
    return found


def steps() -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow()["jobs"].items() for step in spec["steps"]]


COMMANDS = [
    (f"{job}: {argv}", argv) for job, step in steps() for argv in lab_commands(step.get("run", ""))
]


def test_the_workflow_has_lab_commands_to_check() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_lab_command_in_the_workflow_parses(where: str, argv: list[str]) -> None:
    args = cli.parser().parse_args(argv)
    assert callable(args.handler), where


def test_the_extraction_sees_a_bad_flag() -> None:
    (argv,) = lab_commands("python -m lab workshop provision --count 2 | tee x")
    with pytest.raises(SystemExit):
        cli.parser().parse_args(argv)
    assert lab_commands("nox -s lab -- --target kind \\\n  --images f.tar") == [
        ["run", "--target", "kind", "--images", "f.tar"]
    ]


def test_the_workshop_job_runs_the_classroom_path_in_order() -> None:
    job = workflow()["jobs"]["workshop-kind"]
    commands = [argv for step in job["steps"] for argv in lab_commands(step.get("run", ""))]
    actions = [argv[:2] for argv in commands if argv[0] in ("workshop", "run")]
    assert actions == [
        ["workshop", "provision"],  # the dry run
        ["workshop", "provision"],
        ["workshop", "provision"],  # idempotent re-run
        ["run", "--target"],
        ["workshop", "status"],
        ["workshop", "teardown"],
        ["workshop", "teardown"],  # nothing left
    ]
    run = next(argv for argv in commands if argv[0] == "run")
    assert run[run.index("--target") + 1] == "cluster"
    assert run[run.index("--notebooks") + 1] == "00,01,02,03,04,05"
    learner = next(s for s in job["steps"] if "--target cluster" in s.get("run", ""))
    assert learner["env"]["KUBECONFIG"].endswith("build/workshop/learner-01.kubeconfig")
    assert learner["env"]["LAB_NAMESPACE"] == "learner-01"


def test_every_action_is_pinned_to_a_release() -> None:
    for job, step in steps():
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), (job, step["uses"])


def test_the_offline_job_passes_images_through_run() -> None:
    job = workflow()["jobs"]["lab-kind-offline"]
    runs = [argv for step in job["steps"] for argv in lab_commands(step.get("run", ""))]
    assert ["run", "--target", "kind", "--images", "build/images/ironclad-images.tar"] in runs


def test_every_target_the_workflow_runs_has_an_up_timeout_and_run_budgets() -> None:
    from lab.runner.run import DEFAULT_BUDGETS
    from lab.stack import UP_TIMEOUT

    targets = {
        argv[argv.index("--target") + 1]
        for _, argv in COMMANDS
        if argv[0] == "run" and "--target" in argv
    }
    assert targets == {"kind", "cluster"}
    for target in targets:
        assert target in UP_TIMEOUT
        assert target in DEFAULT_BUDGETS
