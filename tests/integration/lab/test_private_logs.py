"""Logs the lab writes are readable by their owner only (issue 20 item 5): what a child prints
may be a secret (`lab up --json` prints the chaos token the 0600 state file protects)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lab.procs import ManagedProcess


def test_a_child_log_is_0600_even_when_it_existed_world_readable(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("an earlier run\n")
    log.chmod(0o644)
    old_umask = os.umask(0)  # the most permissive umask: the mode must not depend on it
    try:
        assert ManagedProcess("child", [sys.executable, "-c", "print('secret')"], log).run() == 0
        fresh = ManagedProcess("fresh", [sys.executable, "-c", "print(1)"], tmp_path / "new.log")
        assert fresh.run() == 0
    finally:
        os.umask(old_umask)
    assert log.read_text() == "an earlier run\nsecret\n"  # appended, nothing lost
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)
    assert oct((tmp_path / "new.log").stat().st_mode & 0o777) == oct(0o600)
