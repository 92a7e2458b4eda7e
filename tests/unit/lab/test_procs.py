"""Directory removal while a late writer is still at work (what a SIGKILLed initdb can be), and
a child whose start a stop signal interrupts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import procs
from lab.procs import (
    GROUPS,
    STOP_SIGNALS,
    ManagedProcess,
    Shutdown,
    raise_on_stop_signals,
    remove_tree,
    wait_until,
)

# Keeps writing new files into DIR/base for SECONDS (until DIR/base is gone), as a dying process
# may finish its writes after a first rmtree pass, which then fails on "directory not empty"
# and leaves DIR behind.
LATE_WRITER = """
import os, sys, time
base, until = os.path.join(sys.argv[1], "base"), time.monotonic() + float(sys.argv[2])
try:
    while time.monotonic() < until:
        open(os.path.join(base, str(time.monotonic_ns())), "w").close()
except FileNotFoundError:
    pass
"""


def test_remove_tree_outlasts_a_writer_that_keeps_writing(tmp_path: Path) -> None:
    root = tmp_path / "ironclad-pg-x"
    (root / "base").mkdir(parents=True)
    writer = subprocess.Popen([sys.executable, "-c", LATE_WRITER, str(root), "1.5"])
    try:
        wait_until(lambda: any((root / "base").iterdir()), timeout=30, what="the writer")
        assert remove_tree(root, timeout=30)
        assert not root.exists()
    finally:
        writer.kill()
        writer.wait()


def test_a_stop_signal_that_lands_while_a_child_starts_stops_that_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal is held until the child is on record, then surfaces inside `start()`: the
    child must not outlive it. An initdb left running there re-created the lab's temporary
    directory after teardown had removed it (1 in ~40 interrupted `lab up` runs in CI)."""

    def signal_while_held(*_: object) -> None:  # the last step of the start, inside held()
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(procs.resource, "prlimit", signal_while_held)
    child = ManagedProcess(
        "sleeper", ["sleep", "60"], tmp_path / "sleeper.log", memory_limit=1 << 30
    )
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    try:
        raise_on_stop_signals()
        with pytest.raises(Shutdown):
            child.start()
        assert child.popen is not None
        assert child.popen.poll() is not None, "the child still runs after the interrupted start"
        assert child.popen.pid not in {group.pgid for group in GROUPS.snapshot()}
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.popen is not None and child.popen.poll() is None:
            child.popen.kill()
            child.popen.wait()
