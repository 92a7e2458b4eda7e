"""lab.wrong_order's process half: a real `python -m backend` started without its database never
opens its port, logs why and exits with code 3 once its start-up timeout has passed; the lab stops
it on every path (also when its wait times out) and leaves no process behind."""

from __future__ import annotations

from collections.abc import Callable

import psutil
import pytest

from lab.errors import LabTimeoutError
from lab.session import Lab
from lab.settings import get_settings
from lab.targets import Endpoints
from lab.wrong_order import NOT_STARTED, PATHS, backend_without_database

pytestmark = pytest.mark.slow


def backends_running() -> set[int]:
    """The pids of this test process's children that run the backend (a child that exited,
    not reaped yet, runs nothing: another module's replica may just have been killed)."""
    running = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "backend" in " ".join(child.cmdline()):
                running.add(child.pid)
        except psutil.NoSuchProcess:  # gone, or a zombie (ZombieProcess is one)
            continue
    return running


@pytest.fixture
def stray_replicas() -> Callable[[], set[int]]:
    """Backend children started since the test began (the stray replica, if left): a test
    worker may hold other modules' stacks, whose replicas are its children too."""
    before = backends_running()
    return lambda: backends_running() - before


@pytest.fixture
def env() -> Lab:
    return Lab(Endpoints("local", ""), "ironclad-demo", 0, "test", get_settings())


def test_a_replica_without_its_database_never_serves_and_exits(
    env: Lab, stray_replicas: Callable[[], set[int]]
) -> None:
    early = backend_without_database(env=env, startup_timeout_s=2)
    assert early.exit_code == NOT_STARTED
    assert early.exited_after_s is not None
    assert early.exited_after_s >= 2
    frame = early.samples_frame()
    assert len(frame) >= 4  # looked at it while it waited
    assert not frame["listening"].any()
    assert frame[list(PATHS)].isna().all().all()
    assert not early.answered()
    log = early.log_frame()
    errors = log[log["level"] == "ERROR"]["msg"].tolist()
    assert any(
        m.startswith(f"start-up failed: PostgreSQL at {early.database}/") and "within 2 s" in m
        for m in errors
    ), errors
    refused = log[log["logger"] == "psycopg.pool"]
    assert len(refused) >= 1
    assert "Connection refused" in refused["msg"].iloc[0]
    assert stray_replicas() == set()


def test_the_replica_is_stopped_when_the_wait_gives_up(
    env: Lab, stray_replicas: Callable[[], set[int]]
) -> None:
    """A start-up timeout longer than the wait: the wait fails, saying what it waited for, and
    the replica (still waiting for PostgreSQL) is stopped anyway."""
    with pytest.raises(LabTimeoutError, match="started without its database"):
        backend_without_database(env=env, startup_timeout_s=60, timeout=1.5)
    assert stray_replicas() == set()
