"""`python -m lab run` end to end with a real local stack: teardown on failure and on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.reader import NotJSONError

from lab.procs import wait_until
from lab.stack import pid_alive

ROOT = Path(__file__).resolve().parents[2]


def notebook(folder: Path, name: str, source: str, seconds: float | None = None) -> None:
    """A notebook with a parameters cell and one code cell (`seconds`: its declared duration,
    which decides its lane)."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'TARGET = "auto"\nNAMESPACE = "ironclad-demo"', metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_code_cell(source),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if seconds is not None:
        nb.metadata["ironclad"] = {"headless_seconds": seconds}
    nbformat.write(nb, folder / f"{name}.ipynb")


def start_run(
    folder: Path, report: Path, lanes: int = 1, target: str = "local", *extra: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab",
            "run",
            "--target",
            target,
            "--notebooks-dir",
            str(folder),
            "--report-dir",
            str(report),
            "--lanes",
            str(lanes),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"},  # auto: no kind here
    )


def lab_up_pid(report: Path, state: str = "lab-state.json") -> int:
    return int(json.loads((report / state).read_text())["pid"])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_failure_stops_the_run_and_tears_the_stack_down(tmp_path: Path) -> None:
    folder, report = tmp_path / "nb", tmp_path / "report"
    folder.mkdir()
    notebook(
        folder,
        "01-uses-the-lab",
        "import lab, requests\nenv = lab.connect(target=TARGET)\n"
        "print(requests.get(env.endpoints.backend + '/health/ready').status_code)",
    )
    notebook(folder, "02-breaks", "1 / 0")
    notebook(folder, "03-never", "print('unreachable')")
    run = start_run(folder, report, target="auto")
    pids: list[int] = []

    def stack_seen() -> bool:
        if (report / "lab-state.json").exists() and not pids:
            pids.append(lab_up_pid(report))
        return bool(pids) or run.poll() is not None

    wait_until(stack_seen, timeout=120, what="the lab to come up")
    output, _ = run.communicate(timeout=200)
    assert run.returncode == 1, output
    summary = json.loads((report / "summary.json").read_text())
    assert [n["status"] for n in summary["notebooks"]] == ["passed", "failed", "not run"]
    assert "ZeroDivisionError" in output  # the traceback
    assert "1 / 0" in output  # the failing cell's source
    assert "backend http://127.0.0.1:" in output  # diagnostics of the stack
    assert "1 passed, 1 failed, 1 not run" in output
    # auto's choice and its reason, in the run's output and in lab up's log (issue 22)
    assert "Starting the lab: target=local (auto): Docker is not running" in output
    up_log = (report / "lab-up.log").read_text()
    assert "target=local (auto): Docker is not running" in up_log
    assert "(requested)" not in up_log
    assert "KeyboardInterrupt caught in kernel" not in output  # kernels stopped quietly
    assert pids, "lab up never wrote its state file"
    assert not pid_alive(pids[0]), "lab up still runs after the run ended"
    assert not (report / "lab-state.json").exists()
    # issue 20 item 5: the report's lab up log holds the chaos token: its owner's only
    log = report / "lab-up.log"
    assert re.search(r'"chaos_token": "[\w-]{20,}"', log.read_text())
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ctrl_c_tears_the_stack_down(tmp_path: Path) -> None:
    folder, report = tmp_path / "nb", tmp_path / "report"
    folder.mkdir()
    notebook(folder, "01-hangs", "import time\nprint('started', flush=True)\ntime.sleep(600)")
    run = start_run(folder, report)

    def cell_running() -> bool:
        executed = report / "01-hangs.ipynb"
        if not executed.exists() or run.poll() is not None:
            return run.poll() is not None
        try:
            nb = nbformat.read(executed, as_version=4)
        except (NotJSONError, ValueError):  # papermill is rewriting the file right now
            return False
        return nb.cells[-1].metadata.get("papermill", {}).get("status") == "running"

    wait_until(cell_running, timeout=150, what="the hanging cell to start")
    pid = lab_up_pid(report)
    os.kill(run.pid, signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 130, output
    summary = json.loads((report / "summary.json").read_text())
    assert summary["notebooks"][0]["status"] == "failed", output
    assert "interrupted" in output
    assert not pid_alive(pid), "lab up still runs after Ctrl-C"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_lanes_two_stacks_and_a_failure_in_one_stops_the_other(tmp_path: Path) -> None:
    """Longest first: 02 (declared 30 s) gets lane 1 alone, 01 then 03 share lane 2. 02 fails
    once 01 has started (a marker file: lane 2's stack may come up after lane 1 has already run
    02, and then 01 was never started); 01 is still sleeping then, so lane 2 runs nothing after
    it. Both stacks torn down."""
    folder, report = tmp_path / "nb", tmp_path / "report"
    folder.mkdir()
    started = folder / "01-started"
    notebook(
        folder,
        "01-slow",
        "import lab, pathlib, time\nenv = lab.connect(target=TARGET)\n"
        f"print(env.endpoints.backend)\npathlib.Path({str(started)!r}).touch()\ntime.sleep(15)",
        seconds=10,
    )
    notebook(
        folder,
        "02-breaks",
        f"import pathlib, time\nwhile not pathlib.Path({str(started)!r}).exists():\n"
        "    time.sleep(0.1)\n1 / 0",
        seconds=30,
    )
    notebook(folder, "03-never", "print('unreachable')", seconds=1)
    run = start_run(folder, report, lanes=2)
    pids: dict[str, int] = {}

    def stacks_seen() -> bool:
        for state in ("lab-state.json", "lab-state-2.json"):
            if (report / state).exists() and state not in pids:
                pids[state] = lab_up_pid(report, state)
        return len(pids) == 2 or run.poll() is not None

    wait_until(stacks_seen, timeout=120, what="both stacks to come up")
    output, _ = run.communicate(timeout=200)
    assert run.returncode == 1, output
    summary = json.loads((report / "summary.json").read_text())
    assert [n["status"] for n in summary["notebooks"]] == ["passed", "failed", "not run"]
    assert "2 stacks …" in output
    assert "[1/3] 01-slow passed" in output
    assert "[2/3] 02-breaks failed" in output
    assert len(set(pids.values())) == 2, pids
    assert [state for state, pid in pids.items() if pid_alive(pid)] == []
    assert list(report.glob("lab-state*.json")) == []


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_run_minus_n_names_the_stacks_namespace(tmp_path: Path) -> None:
    """`run -n X`: the stack it starts records X and the notebook's NAMESPACE parameter is X."""
    folder, report = tmp_path / "nb", tmp_path / "report"
    folder.mkdir()
    notebook(
        folder,
        "01-where",
        "import json, os\n"
        "recorded = json.loads(open(os.environ['LAB_STATE_FILE']).read())['namespace']\n"
        "assert (NAMESPACE, recorded) == ('learner-07', 'learner-07'), (NAMESPACE, recorded)",
    )
    run = start_run(folder, report, 1, "local", "-n", "learner-07")
    try:
        out, _ = run.communicate(timeout=200)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
    assert run.returncode == 0, out  # 0 only when the notebook ran and its assert held
