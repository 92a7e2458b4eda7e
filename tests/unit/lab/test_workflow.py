"""The GitHub workflow cannot run here: check what can be checked offline. Every `ironclad-lab`,
`python -m lab` and `nox -s lab --` command in it must parse with lab.cli's own parser (a renamed
or dropped flag fails here, not on the runner), and the workshop job must cover the classroom
path end to end."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from lab import cli
from lab.settings import find_repo_root
from lab.targets.spec import SPECS

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
    assert lab_commands("nox -s lab -- --target kind \\\n  --archive f.tar") == [
        ["run", "--target", "kind", "--archive", "f.tar"]
    ]


def test_the_workshop_job_runs_the_classroom_path_in_order() -> None:
    job = workflow()["jobs"]["workshop-kind"]
    commands = [argv for step in job["steps"] for argv in lab_commands(step.get("run", ""))]
    actions = [argv[:2] for argv in commands if argv[0] in ("workshop", "run")]
    assert actions == [
        ["workshop", "provision"],  # the dry run
        ["workshop", "provision"],
        ["workshop", "provision"],  # the same --out: the same workshop again
        ["workshop", "provision"],  # bad input: a namespace that is not ours
        ["workshop", "provision"],  # bad input: the name of another workshop
        ["workshop", "teardown"],  # bad input: a workshop that does not exist
        ["run", "--target"],
        ["workshop", "status"],
        ["workshop", "teardown"],  # --dry-run
        ["workshop", "teardown"],  # --yes
        ["workshop", "teardown"],  # gone: must fail
    ]
    teardowns = [argv for argv in commands if argv[:2] == ["workshop", "teardown"]]
    assert ["--dry-run" in a for a in teardowns] == [False, True, False, False]
    assert all("--yes" in a for a in teardowns if "--dry-run" not in a)
    run = next(argv for argv in commands if argv[0] == "run")
    assert run[run.index("--target") + 1] == "cluster"
    assert run[run.index("--notebooks") + 1] == "00,01,02,03,04,05,08"
    status = next(s for s in job["steps"] if s.get("name", "").startswith("workshop status"))
    assert "05✓.* 08✓" in status["run"]  # both lessons' runs recorded, in order
    learner = next(s for s in job["steps"] if "--target cluster" in s.get("run", ""))
    assert learner["env"]["KUBECONFIG"].endswith("build/workshop/learner-01.kubeconfig")
    assert learner["env"]["LAB_NAMESPACE"] == "learner-01"
    policy = next(s for s in job["steps"] if "admission policy, live" in s.get("name", ""))
    assert policy["run"].count('refused "') == 4
    assert "--dry-run=server" in policy["run"]


USES = re.compile(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+(?:\.\d+)*)$")


def test_every_action_is_pinned_to_a_commit_with_its_release_named() -> None:
    """A tag can be moved; a commit cannot. The SHAs were read from each action's git tags
    (refs/tags/vX.Y.Z -> commit); the comment says which release to compare with on update."""
    lines = [line.strip() for line in WORKFLOW.read_text().splitlines() if "uses:" in line]
    assert len(lines) >= 10
    for line in lines:
        assert USES.fullmatch(line.removeprefix("- ")), line
    used = {step["uses"] for _, step in steps() if "uses" in step}
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in used)
    versions: dict[str, set[str]] = {}
    for line in lines:
        match = USES.fullmatch(line.removeprefix("- "))
        assert match
        versions.setdefault(match[1], set()).add(match[2])
    assert all(len(shas) == 1 for shas in versions.values()), versions  # one pin per action


def test_the_offline_job_passes_images_through_run() -> None:
    job = workflow()["jobs"]["lab-kind-offline"]
    runs = [argv for step in job["steps"] for argv in lab_commands(step.get("run", ""))]
    assert ["run", "--target", "kind", "--archive", "build/images/ironclad-images.tar"] in runs


def test_every_target_the_workflow_runs_has_an_up_timeout_and_run_budgets() -> None:
    targets = {
        argv[argv.index("--target") + 1]
        for _, argv in COMMANDS
        if argv[0] == "run" and "--target" in argv
    }
    assert targets == {"kind", "cluster"}
    for target in targets:
        assert target in SPECS


# containerd's CRI plugin as journalctl shows it on a kind node: logfmt quotes msg= and escapes
# the quotes inside it (the lines of one pull, then lines that are not pulls).
JOURNAL = (
    'Dec 06 08:12:01 ironclad-worker containerd[112]: time="2026-12-06T08:12:01.5Z" level=info '
)
PAUSE = r"\"registry.k8s.io/pause:3.10\""
CONTAINERD_LOG = "".join(
    JOURNAL + msg + "\n"
    for msg in (
        rf'msg="PullImage {PAUSE}"',
        rf'msg="ImageCreate event name:{PAUSE} labels:{{key:\"io.cri-containerd.image\" '
        r'value:\"managed\"}"',
        rf'msg="PullImage {PAUSE} returns image reference '
        r'\"sha256:873ed75102791e5b0b8a7fcd41606c92fcec98d56d05ead4ac5131650004c136\""',
    )
)
NOT_PULLS = "".join(
    JOURNAL + msg + "\n"
    for msg in (
        r'msg="ImageCreate event name:\"docker.io/library/ironclad-backend:lab\""',
        rf'msg="ImageUpdate event name:{PAUSE}"',
        r'msg="CreateContainer within sandbox \"0a1b\" for container '
        r'&ContainerMetadata{Name:backend,Attempt:0,}"',
    )
)


def grep_pulls(pattern: str, log: str, fixed: bool = False) -> list[str]:
    """The lines `grep -E PATTERN` (or -F) selects from `log`, as the workflow step runs it."""
    flag = "-F" if fixed else "-E"
    found = subprocess.run(["grep", flag, pattern], input=log, capture_output=True, text=True)
    assert found.returncode in (0, 1), found.stderr
    return found.stdout.splitlines()


def pull_step() -> dict[str, Any]:
    job = workflow()["jobs"]["lab-kind-offline"]
    return next(s for s in job["steps"] if s.get("name") == "No node pulled an image")


@pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")
def test_the_no_pull_check_sees_containerds_escaped_pull_lines() -> None:
    step = pull_step()
    assert 'grep -E "$PULL_LINE"' in step["run"]
    pattern = step["env"]["PULL_LINE"]
    assert len(grep_pulls(pattern, CONTAINERD_LOG)) == 2  # the pull and its result
    assert grep_pulls(pattern, NOT_PULLS) == []  # images loaded from the archive: no pull
    assert grep_pulls(pattern, 'msg="PullImage "busybox""') != []  # an unescaped log format
    # the old check: a fixed 'PullImage "' never matched containerd's escaped line
    assert grep_pulls('PullImage "', CONTAINERD_LOG, fixed=True) == []


def test_every_lab_job_outlasts_the_runners_own_budgets() -> None:
    """GitHub kills a job at its timeout without the runner's report: the timeout must exceed
    `up`'s timeout plus the whole run's budget plus the job's setup."""
    setup_minutes = 20  # install, cluster creation, image build/save/load
    checked = []
    for name, job in workflow()["jobs"].items():
        runs = [argv for step in job["steps"] for argv in lab_commands(step.get("run", ""))]
        for argv in (a for a in runs if a[0] == "run" and "--target" in a):
            target = argv[argv.index("--target") + 1]
            needed = (SPECS[target].up_timeout + SPECS[target].run_budget) / 60 + setup_minutes
            assert needed < job["timeout-minutes"] <= 360, (name, needed)
            checked.append(name)
    assert sorted(checked) == ["lab-kind", "lab-kind-offline", "workshop-kind"]
