"""A real, throwaway PostgreSQL server in a temporary directory on a free loopback port: the
local target's database and the integration tests' (`PostgresServer`), run as a
`lab.procs.ManagedProcess`, so an interrupt or its owner's stop stops it too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lab.errors import LabError, ProcessFailedError, ToolMissingError
from lab.i18n import _
from lab.net import LOOPBACK, free_port, port_is_open
from lab.procs import SHUTDOWN_SIGNALS, ManagedProcess, remove_tree, wait_until


def find_postgres_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres: $PG_BINDIR, PATH, or Debian's layout."""
    candidates: list[Path] = []
    if env_dir := os.environ.get("PG_BINDIR"):
        candidates.append(Path(env_dir))
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return directory
    raise ToolMissingError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql)",
        install=_(
            "Debian/Ubuntu: `sudo apt-get install postgresql`; macOS: `brew install "
            'postgresql@17` then `export PG_BINDIR="$(brew --prefix postgresql@17)/bin"`; conda: '
            "`conda install -c conda-forge postgresql`; elsewhere set PG_BINDIR to their directory"
        ),
    )


@dataclass
class PostgresServer:
    """A real PostgreSQL server in a temporary directory on a free loopback port.

    The postmaster runs in the foreground as a `ManagedProcess` (not daemonized by `pg_ctl`,
    which puts it in a session of its own that nobody records): interrupting its start or
    stopping its owner stops it. PostgreSQL refuses to run as root, so as root every server
    command runs as the `postgres` system user and the data directory is owned by it.
    """

    database: str = "ironclad"
    user: str = "ironclad_user"
    password: str = "ironclad-local-password"  # noqa: S105 - throwaway local server
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ironclad-pg-")))
    bindir: Path = field(default_factory=find_postgres_bindir)
    process: ManagedProcess | None = field(default=None, init=False, repr=False)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{self.database}"

    def env(self) -> dict[str, str]:
        """Connection settings in the backend's environment-variable form."""
        return {
            "POSTGRES_HOST": LOOPBACK,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_DB": self.database,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
        }

    @property
    def _owner(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def _process(self, name: str, argv: Sequence[str], log_path: Path) -> ManagedProcess:
        return ManagedProcess(name, argv, log_path, env=os.environ, cwd=self.root, user=self._owner)

    def _run(self, argv: Sequence[str], what: str) -> None:
        """Run a PostgreSQL tool to its end, in its own process group (stopped if interrupted)."""
        log_path = self.root / f"{what}.log"
        process = self._process(f"PostgreSQL {what}", argv, log_path)
        if process.run() != 0:
            raise ProcessFailedError(f"PostgreSQL {what}", _("exited with an error"), log_path)

    def init(self) -> PostgresServer:
        """initdb, then create the application role and database."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._owner is not None:
            shutil.chown(self.root, self._owner)
            shutil.chown(self.socket_dir, self._owner)
            self.root.chmod(0o700)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            "initdb",
        )
        self.start()
        # Imported here: psycopg comes with the backend extra, which only the local target
        # (the one place a PostgresServer runs) needs; `import lab` must work without it.
        from psycopg import sql

        self._run(
            [
                str(self.bindir / "psql"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
                .format(sql.Identifier(self.user), sql.Literal(self.password))
                .as_string(),
                "-c",
                sql.SQL("CREATE DATABASE {} OWNER {}")
                .format(sql.Identifier(self.database), sql.Identifier(self.user))
                .as_string(),
            ],
            "bootstrap",
        )
        return self

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster and wait until it accepts connections."""
        self.process = self._process(
            "postgres",
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            self.log_path,
        )
        process = self.process.start()

        def ready() -> bool:
            process.ensure_running()
            return self._status() == "ready" and port_is_open(self.port)

        wait_until(ready, timeout=timeout, what=_("PostgreSQL to accept connections"), interval=0.1)

    def _status(self) -> str:
        """The postmaster's status line in postmaster.pid ("starting", "ready", ...)."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return ""
        return lines[7].strip() if len(lines) > 7 else ""

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server; `immediate` is a crash-like stop (recovery runs on next start)."""
        process = self.process
        if process is None or not process.running():
            raise ProcessFailedError(
                "PostgreSQL stop", _("({mode}): the server is not running").format(mode=mode)
            )
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, SHUTDOWN_SIGNALS[mode])
        wait_until(
            lambda: not process.running(),
            timeout=60,
            what=_("PostgreSQL to stop ({mode})").format(mode=mode),
        )
        process.stop()  # its group: any backend process left behind

    def running(self) -> bool:
        return self.process is not None and self.process.running() and port_is_open(self.port)

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if self.process is not None:
            with contextlib.suppress(LabError):
                self.stop("immediate")
            self.process.stop()
        remove_tree(self.root)

    def __enter__(self) -> PostgresServer:
        try:
            return self.init()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()
