"""Real local processes: managed child processes, a throwaway PostgreSQL server, port owners.

Used by the `local` target and by the integration tests, so both exercise the same code.
Every process is started in its own session (process group) so that stopping it also stops
anything it spawned; nothing here sleeps blindly, every wait polls a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from lab.errors import LabError, ProcessFailedError, ToolMissingError
from lab.net import LOOPBACK, free_port, port_is_open
from lab.waits import poll


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    on_timeout: Callable[[], str] | None = None,
) -> None:
    """Poll `condition` until it is true; raise LabTimeoutError naming `what` after `timeout` s.

    `lab.waits.poll` without the progress bar: for waits too short or too internal to show.
    """
    poll(
        condition,
        what=what,
        timeout=timeout,
        interval=interval,
        diagnose=on_timeout,
        progress=False,
    )


def listener_pid(url: str) -> int:
    """Pid of the local process listening on `url`'s port (e.g. to kill one replica on purpose)."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for conn in psutil.net_connections(kind="tcp"):
        address = conn.laddr
        if conn.status == psutil.CONN_LISTEN and address and address.port == port and conn.pid:
            return int(conn.pid)
    raise LabError(f"Nothing listens on {url}.", "Is the local lab running? lab.connect().")


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output captured in a log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ProcessFailedError(self.name, "was never started", self.log_path)
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def ensure_running(self) -> None:
        """Raise ProcessFailedError (with the log tail) if the process has exited."""
        if not self.running():
            code = self.popen.returncode if self.popen else None
            raise ProcessFailedError(self.name, f"exited with code {code}", self.log_path)

    def signal(self, signum: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout` s; return the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(5)
        # Reap anything left in the group (children that ignored SIGTERM).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.returncode


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
        install="Debian/Ubuntu: `sudo apt-get install postgresql`; macOS: `brew install "
        'postgresql@17` then `export PG_BINDIR="$(brew --prefix postgresql@17)/bin"`; conda: '
        "`conda install -c conda-forge postgresql`; elsewhere set PG_BINDIR to their directory",
    )


@dataclass
class PostgresServer:
    """A real PostgreSQL server in a temporary directory on a free loopback port.

    PostgreSQL refuses to run as root, so as root every server command runs as the
    `postgres` system user (via runuser) and the data directory is owned by it.
    """

    database: str = "ironclad"
    user: str = "ironclad_user"
    password: str = "ironclad-local-password"  # noqa: S105 - throwaway local server
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ironclad-pg-")))
    bindir: Path = field(default_factory=find_postgres_bindir)

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

    def _as_owner(self, argv: Sequence[str]) -> list[str]:
        if os.geteuid() != 0:
            return list(argv)
        if shutil.which("runuser") is None:
            raise ToolMissingError(
                "runuser (to run PostgreSQL as a non-root user)", install="it ships with util-linux"
            )
        return ["runuser", "-u", "postgres", "--", *argv]

    def _run(self, argv: Sequence[str], what: str) -> None:
        result = subprocess.run(self._as_owner(argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ProcessFailedError(
                f"PostgreSQL {what}", result.stderr.strip() or result.stdout, self.log_path
            )

    def init(self) -> PostgresServer:
        """initdb, then create the application role and database."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
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
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={LOOPBACK} "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            "start",
        )

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server; `immediate` is a crash-like stop (recovery runs on next start)."""
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"],
            f"stop ({mode})",
        )

    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists() and port_is_open(self.port)

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(ProcessFailedError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.init()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.destroy()
