"""Directory removal while a late writer is still at work (what a SIGKILLed initdb can be)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab.procs import remove_tree, wait_until

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
