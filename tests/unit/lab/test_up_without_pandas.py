"""`ironclad-lab up` never imports pandas (issue 24 item 3: pandas only in the notebook-facing
`*_frame()` views). The real command runs in a subprocess under `python -X importtime`, on the
cluster target against the recording fake API server, until its JSON line says the stack is up;
every module it imported is read from importtime's report. (kind cannot run here: its module is
checked by import, the same way.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

NS = "ironclad-demo"
IMAGE = "registry.example/ironclad-backend:1"


def imported(report: str) -> set[str]:
    """The modules `python -X importtime` reported importing (its stderr)."""
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in report.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def pandas_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "pandas" or m.startswith("pandas."))


def test_up_on_the_cluster_target_never_imports_pandas(
    fake: FakeApiServer, upstream: tuple[str, int], kubeconfig: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,  # KUBECONFIG: the fake's (the kubeconfig fixture)
        "LAB_STATE_FILE": str(tmp_path / "state.json"),
        "LAB_ROLLOUT_TIMEOUT": "20",
        "TMPDIR": str(tmp_path),  # the dynamic client's discovery cache: this test's own
    }
    argv = ["up", "--target", "cluster", "--namespace", NS, "--context", kubeconfig]
    stderr = tmp_path / "importtime.txt"  # a file: importtime writes more than a pipe holds
    with stderr.open("w") as errors:
        up = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "lab", *argv, "--image", IMAGE, "--json"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
        try:
            assert up.stdout is not None
            line = up.stdout.readline()  # printed once everything is ready
        finally:
            up.send_signal(signal.SIGTERM)  # up tears down and exits on SIGTERM
            try:
                up.communicate(timeout=120)
            finally:
                if up.poll() is None:
                    up.kill()
                    up.wait()
    report = stderr.read_text()
    assert line, f"up printed no JSON line:\n{report[-3000:]}"
    assert json.loads(line)["target"] == "cluster"
    modules = imported(report)
    assert {"lab.targets.cluster", "lab.k8s.namespace", "kubernetes"} <= modules  # it ran
    assert pandas_in(modules) == []
    assert "lab.k8s.frames" not in modules


def test_the_kind_target_and_the_stack_import_no_pandas() -> None:
    code = "import lab.commands.stack, lab.stack, lab.targets.kind, lab.targets.cluster, lab.k8s"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = imported(result.stderr)
    assert "lab.targets.kind" in modules
    assert pandas_in(modules) == []
