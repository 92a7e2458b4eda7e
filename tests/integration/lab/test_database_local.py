"""lab.database on the local target: it finds the lab's PostgreSQL from the pid file `lab up`
keeps, freezes it (a client's connection attempt then times out) and thaws it (the same server,
with its data, answers again); without a server it says what to do."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lab import database
from lab.errors import LabError
from lab.postgres import PostgresServer
from lab.procs import ProcessGroups
from lab.session import Lab
from lab.settings import get_settings
from lab.stack import pid_file
from lab.targets import Endpoints


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[tuple[Lab, PostgresServer]]:
    """A local 'lab' holding only its PostgreSQL, recorded as `lab up` records it."""
    settings = dataclasses.replace(get_settings(), state_file_override=tmp_path / "lab-state.json")
    with PostgresServer() as server:
        assert server.process is not None
        recorded = ProcessGroups()  # lab up's own record, in its own pid file
        recorded.keep_file(pid_file(settings.state_file))
        recorded.add(database.SERVER_GROUP, server.process.pid)
        env = Lab(Endpoints("local", ""), "ironclad-demo", 0, "test", settings)
        try:
            yield env, server
        finally:
            database.bring_back(env=env)  # never leave a frozen server to the teardown
            recorded.keep_file(None)


def answers(server: PostgresServer) -> bool:
    try:
        with psycopg.connect(server.dsn, connect_timeout=1) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_take_down_freezes_the_labs_server_and_bring_back_thaws_it(
    lab_env: tuple[Lab, PostgresServer],
) -> None:
    env, server = lab_env
    found = database.local_server(env.settings.state_file)
    assert (found.port, found.datadir) == (server.port, server.datadir)
    with psycopg.connect(found.dsn("postgres"), autocommit=True) as conn:  # the socket, trust
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    down = database.take_down(env=env)
    assert "frozen" in down["touched"]
    assert not answers(server)  # accepted by the kernel, never answered: a timeout
    back = database.bring_back(env=env)
    assert "thawed" in back["touched"]
    assert answers(server)


def test_without_a_server_the_error_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"not running[\s\S]*lab.connect\(lesson=N\)"):
        database.local_server(tmp_path / "lab-state.json")
