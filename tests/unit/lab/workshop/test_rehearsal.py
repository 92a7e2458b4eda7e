"""The whole classroom, rehearsed offline through the command line (docs/workshop.md): the
instructor provisions two learners, learner 1 brings the lab up on the cluster target with nothing
but the kubeconfig provision wrote, resets it to lesson 5, looks at `status`, the instructor reads
`workshop status`, the learner runs lesson 08's cluster calls (the backup add-on, a Job, the
cleanup), stops with `down`, the instructor tears down.

The cluster is the fake API server (tests/plugins/fake_kube_api.py), on which another workshop and
a namespace nobody provisioned already exist. It tells callers apart by their token: the
instructor is unrestricted; the learner's token gets exactly the rights provision created
(the Roles bound to their ServiceAccount through `lab.rbac`'s evaluator, RBAC's escalation
check, the workshop's admission policy evaluated with cel-python, the quota), enforced on every
request. Asserted: no request was refused, the learner's stayed in their two namespaces, and
the foreign namespace and the other workshop were never touched. What it cannot show: a real
API server, scheduler and kubelet (the workflow's `workshop-kind` job runs the same path on
kind).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from lab import backup, cli
from lab.manifests import find, render
from lab.session import connect
from lab.settings import Settings, find_repo_root
from lab.workshop.api import Endpoint
from lab.workshop.objects import kubeconfig

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

pytestmark = pytest.mark.slow
IMAGE = "registry.example/ironclad-backend:1"
FOREIGN = "team-foreign"


def write_kubeconfig(path: Path, server: str, token: str, context: str) -> Path:
    """The instructor's kubeconfig, written the way provision writes the learners'."""
    path.write_text(kubeconfig(context, Endpoint(server, None, False), token))
    return path


def lab(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`ironclad-lab ARGV` in this process, with the settings of the environment as it is now
    (KUBECONFIG, LAB_STATE_FILE: whose turn it is); its output (exit code 0 required)."""
    code = cli.main(list(argv), Settings.from_env())
    out = capsys.readouterr()
    assert code == 0, f"ironclad-lab {' '.join(argv)} exited {code}:\n{out.out}\n{out.err}"
    assert "\r" not in out.err  # no progress frames off a terminal (teardown's wait has a bar)
    return out.out


def snapshot(fake: FakeApiServer, namespaces: set[str]) -> dict[str, Any]:
    """Everything the fake holds in `namespaces` (objects, labels) and its admission policies."""
    return json.loads(
        json.dumps(
            {
                "objects": {
                    "/".join(k): o for k, o in fake.store.objects.items() if k[2] in namespaces
                },
                "labels": {n: fake.namespace_labels.get(n) for n in sorted(namespaces)},
                "present": sorted(namespaces & fake.namespaces),
                "cluster": {"/".join(k): o for k, o in fake.cluster_objects.items()},
            },
            sort_keys=True,
        )
    )


class Up:
    """`python -m lab up --target cluster --json` as the learner: a process of this test's own,
    stopped by its pid on every path."""

    def __init__(self, env: dict[str, str], log: Path, *flags: str) -> None:
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lab", "up", "--target", "cluster", "--json", *flags],
            cwd=find_repo_root(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def endpoints(self, timeout: float = 120.0) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"`up` printed nothing in {timeout:g} s; its log: {self.log.name}")
        return dict(json.loads(line))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def test_the_classroom_from_provision_to_teardown(
    fake: FakeApiServer,
    upstream: tuple[str, int],
    discovery_cache: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = write_kubeconfig(tmp_path / "admin.kubeconfig", fake.url, fake.admin_token, "admin")
    monkeypatch.setenv("KUBECONFIG", str(admin))
    for name in ("LAB_NAMESPACE", "LAB_IMAGE", "LAB_KUBE_CONTEXT", "LAB_STATE_FILE"):
        monkeypatch.delenv(name, raising=False)

    # Before the class: a namespace nobody provisioned (with a Secret), and the morning's
    # workshop, provisioned through the same command with its own prefix and --out.
    fake.namespaces.add(FOREIGN)
    fake.namespace_labels[FOREIGN] = {"team": "payments"}
    theirs = {"name": "theirs", "namespace": FOREIGN}
    fake.put({"apiVersion": "v1", "kind": "Secret", "metadata": theirs, "data": {"k": "dg=="}})
    morning = tmp_path / "morning"
    lab("workshop", "provision", "--learners", "1", "--prefix", "am-", "--out", str(morning),
        "--context", "admin", capsys=capsys)  # fmt: skip
    untouched = {FOREIGN, "am-01", "am-01-peer"}
    before = snapshot(fake, untouched)
    calls_before = len(fake.calls)

    # 1. the instructor provisions two learners
    out = tmp_path / "afternoon"
    said = lab("workshop", "provision", "--learners", "2", "--out", str(out), "--token-expiry",
               "2h", "--context", "admin", capsys=capsys)  # fmt: skip
    record = json.loads((out / "workshop.json").read_text())
    assert said.startswith(f"Workshop {record['workshop']} (id {record['id']}, new)")
    assert record["workshop"] != json.loads((morning / "workshop.json").read_text())["workshop"]
    assert all(not body["spec"].get("audiences") for body in fake.token_requests)  # API's own
    learner_token = "token-of-learner-01"
    assert (
        yaml.safe_load((out / "learner-01.kubeconfig").read_text())["users"][0]["user"]["token"]
        == learner_token
    )

    # 2. learner 1: `up --target cluster` with their kubeconfig only, in a process of its own,
    # named by the kubectl-style flags (KUBECONFIG names no file: --kubeconfig must be read)
    state = tmp_path / "lab-state.json"
    env = {
        **os.environ,
        "KUBECONFIG": str(tmp_path / "no-such.kubeconfig"),
        "LAB_IMAGE": IMAGE,
        "LAB_STATE_FILE": str(state),
        "LAB_ROLLOUT_TIMEOUT": "30",
        "TMPDIR": str(tmp_path),  # the dynamic client's discovery cache: this test's own
    }
    env.pop("LAB_NAMESPACE", None)
    flags = ("-n", "learner-01", "--kubeconfig", str(out / "learner-01.kubeconfig"))
    up = Up(env, tmp_path / "up.log", *flags)
    try:
        endpoints = up.endpoints()
        assert endpoints["target"] == "cluster"
        assert endpoints["backend"].startswith("http://127.0.0.1:")
        # 3. the learner's `reset --to 5`: the lab's recorded identity, their kubeconfig's
        monkeypatch.setenv("KUBECONFIG", str(out / "learner-01.kubeconfig"))
        monkeypatch.setenv("LAB_STATE_FILE", str(state))
        reset = lab("reset", "--to", "5", capsys=capsys)
        assert "resetting context learner-01, namespace learner-01" in reset
        assert "objects (server-side apply)" in reset
        assert "backend: 3 ready" in reset
        # 4. the learner's `status`
        shown = lab("status", "--state-file", str(state), capsys=capsys)
        assert "namespace:  learner-01" in shown
        # 5. the instructor's `workshop status` (their own kubeconfig): lesson 05 starts before
        # its part, so the reset removed 05's and 06's objects (lab.lessons)
        monkeypatch.setenv("KUBECONFIG", str(admin))
        board = lab("workshop", "status", "--out", str(out), "--context", "admin", capsys=capsys)
        rows = {line.split()[0]: line.split()[1:] for line in board.splitlines()[1:]}
        assert rows["learner-01"][:5] == ["✓", "✓", "✓", "-", "-"]
        monkeypatch.setenv("KUBECONFIG", str(out / "learner-01.kubeconfig"))
        assert "postgres ready" in lab("reset", "--to", "7", capsys=capsys)  # every part again
        monkeypatch.setenv("KUBECONFIG", str(admin))
        board = lab("workshop", "status", "--out", str(out), "--context", "admin", capsys=capsys)
        rows = {line.split()[0]: line.split()[1:] for line in board.splitlines()[1:]}
        assert set(rows) == {"learner-01", "learner-02"}
        assert rows["learner-01"][:5] == ["✓"] * 5  # every lesson's objects there and ready
        assert rows["learner-02"][:5] == ["-"] * 5
        # ... for a script (-o json), with the admin's kubeconfig named by --kubeconfig
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such.kubeconfig"))
        argv = ["workshop", "status", "--out", str(out), "--kubeconfig", str(admin)]
        board_json = json.loads(lab(*argv, "--context", "admin", "-o", "json", capsys=capsys))
        assert (board_json["workshop"], board_json["id"]) == (record["workshop"], record["id"])
        learners = {x["namespace"]: x for x in board_json["learners"]}
        assert set(learners) == {"learner-01", "learner-02"}
        assert all(o["healthy"] for objects in learners["learner-01"]["lessons"].values()
                   for o in objects)  # fmt: skip
        assert not any(o["exists"] for objects in learners["learner-02"]["lessons"].values()
                       for o in objects)  # fmt: skip
        board_yaml = lab(*argv, "--context", "admin", "-o", "yaml", capsys=capsys)
        assert yaml.safe_load(board_yaml) == board_json
        # 5b. lesson 08's cluster calls, as the learner in a notebook: connect at lesson 8 (every
        # part there), the backup add-on applied, a step's Job, then its cleanup cell (the Jobs'
        # pods need a kubelet: the workshop-kind job runs the notebook itself)
        monkeypatch.setenv("KUBECONFIG", str(out / "learner-01.kubeconfig"))
        env = connect(lesson=8, settings=Settings.from_env())
        applied = backup.apply(env=env)
        assert {"PersistentVolumeClaim/postgres-backup", "CronJob/postgres-backup"} <= set(applied)
        addon = render("backup", env.settings, namespace=env.namespace)
        cronjob = find(addon, "CronJob", backup.CRONJOB)
        env.k8s.apply([backup.job_manifest(cronjob, "backup", None)])
        assert len(fake.store.of("batch/v1", "jobs", "learner-01")) == 1
        assert len(fake.store.of("v1", "persistentvolumeclaims", "learner-01")) == 1
        assert env.k8s.delete(addon) == len(addon)
        for api_version, kind in (("batch/v1", "Job"), ("v1", "Pod")):
            env.k8s.delete_labelled(api_version, kind, backup.JOB_LABEL)
        assert fake.store.of("batch/v1", "jobs", "learner-01") == []
        assert fake.store.of("v1", "persistentvolumeclaims", "learner-01") == []
        # 6. the learner's `down`
        monkeypatch.setenv("KUBECONFIG", str(out / "learner-01.kubeconfig"))
        assert "Stopped the cluster lab" in lab("down", "--state-file", str(state), capsys=capsys)
        assert up.process.wait(timeout=60) == 0
    finally:
        up.stop()

    # 7. the instructor's teardown (the same --out names the workshop and its id)
    monkeypatch.setenv("KUBECONFIG", str(admin))
    listed = lab("workshop", "teardown", "--dry-run", "--out", str(out), "--context", "admin",
                 capsys=capsys)  # fmt: skip
    assert "Namespace/learner-02-peer" in listed
    assert "Dry run" in listed
    lab("workshop", "teardown", "--yes", "--out", str(out), "--context", "admin", capsys=capsys)
    assert (
        fake.namespaces & {"learner-01", "learner-02", "learner-01-peer", "learner-02-peer"}
        == set()
    )
    assert not (out / "workshop.json").exists()

    # every request allowed; the learner's in their namespaces; nothing else touched
    assert fake.denied == []
    learner = [c for c in fake.calls if c.caller == learner_token]
    requests = [r for c in learner for r in c.requests()]
    assert len(requests) > 50
    assert {r.namespace for r in requests} <= {"learner-01", "learner-01-peer"}
    assert {c.caller for c in fake.calls[calls_before:]} == {fake.admin_token, learner_token}
    touched = {r.namespace for c in fake.calls[calls_before:] for r in c.requests()}
    assert touched.isdisjoint(untouched)
    morning_policy = (
        f"ironclad-lab-{json.loads((morning / 'workshop.json').read_text())['workshop']}"
    )
    named = {r.name for c in fake.calls[calls_before:] for r in c.requests()}
    assert morning_policy not in named
    assert snapshot(fake, untouched) == before


def fails(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`ironclad-lab ARGV`, which must exit 1 with one message and no traceback; the message."""
    code = cli.main(list(argv), Settings.from_env())
    out = capsys.readouterr()
    assert code == 1, f"ironclad-lab {' '.join(argv)} exited {code}:\n{out.out}\n{out.err}"
    assert "Traceback" not in out.err
    return out.err


def test_bad_input_through_the_cli_changes_nothing(
    fake: FakeApiServer,
    discovery_cache: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/workshop.md "Bad input": a clear message, exit 1, nothing outside the workshop's objects
    touched (the store compared before and after each refusal)."""
    admin = write_kubeconfig(tmp_path / "admin.kubeconfig", fake.url, fake.admin_token, "admin")
    monkeypatch.setenv("KUBECONFIG", str(admin))
    theirs = {"name": "theirs", "namespace": "team-03"}
    fake.namespaces.add("team-03")
    fake.put({"apiVersion": "v1", "kind": "Secret", "metadata": theirs, "data": {"k": "dg=="}})
    out = tmp_path / "ws"
    lab("workshop", "provision", "--learners", "1", "--out", str(out), "--context", "admin",
        capsys=capsys)  # fmt: skip
    name = json.loads((out / "workshop.json").read_text())["workshop"]
    every = {"learner-01", "learner-01-peer", "team-03"}
    before = snapshot(fake, every)

    said = fails("workshop", "provision", "--learners", "3", "--prefix", "team-", "--out",
                 str(tmp_path / "team"), "--context", "admin", capsys=capsys)  # fmt: skip
    assert "Nothing was changed: namespace team-03 exists and is not a workshop's" in said
    assert not fake.namespaces & {"team-01", "team-02"}
    late = str(tmp_path / "late")
    said = fails("workshop", "provision", "--learners", "1", "--prefix", "late-", "--workshop",
                 name, "--out", late, "--context", "admin", capsys=capsys)  # fmt: skip
    assert f"the name {name} is taken by another provisioned workshop" in said
    said = fails("workshop", "teardown", "--workshop", "nope", "--yes", "--context", "admin",
                 capsys=capsys)  # fmt: skip
    assert "There is no workshop nope on this cluster" in said
    assert snapshot(fake, every) == before
    assert not {c for c in fake.calls if c.method == "DELETE"}

    # a learner's record that is not JSON: that learner's row says so, the board still shows
    fake.put({"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "ironclad-run-x", "namespace": "learner-01",
                           "labels": {"ironclad.lab/run-summary": "true"}},
              "data": {"summary.json": "{\x1b[2J not json"}})  # fmt: skip
    board = lab("workshop", "status", "--out", str(out), "--context", "admin", capsys=capsys)
    assert "unreadable record" in board.splitlines()[1]
    assert "\x1b" not in board
