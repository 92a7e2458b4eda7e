"""`python -m backend`: serve with uvicorn (one worker) on $PORT, draining on SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from backend.app import create_app
from backend.logs import configure_logging
from backend.server import build_server
from backend.settings import Settings, SettingsError

log = logging.getLogger("backend")

ENVIRONMENT = """\
configuration comes from the environment (see backend/README.md):
  HOST, PORT                     listen address (0.0.0.0:3000)
  DATABASE_URL or POSTGRES_HOST/PORT/DB/USER/PASSWORD
  CHAOS_TOKEN                    bearer token of /api/chaos (unset: chaos refused)
  LOG_LEVEL                      DEBUG, INFO, WARNING, ERROR, CRITICAL (INFO)
  DB_TIMEOUT_S, DB_STARTUP_TIMEOUT_S, DRAIN_DELAY_S, SHUTDOWN_TIMEOUT_S
  READ_TIMEOUT_S                 bound on reading a whole request, headers and body (5)
  MAX_CONNECTIONS                connections beyond this get 503, liveness excepted (1000)

exit codes:
  0     stopped by SIGTERM/SIGINT after serving (drained)
  2     a bad setting
  3     did not start: PostgreSQL did not come within DB_STARTUP_TIMEOUT_S, or the port is taken
  128+N stopped by signal N while waiting for PostgreSQL (143: SIGTERM, 130: SIGINT)
  137   out of memory under RLIMIT_AS (a chaos memory hog)
"""
EXIT_BAD_SETTING = 2
EXIT_NOT_STARTED = 3
EXIT_SIGNALLED = 128  # + the signal's number (the shell's convention)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line has only --help: everything else is environment."""
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="Serve the Ironclad backend (one uvicorn worker) until SIGTERM drains it.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Read settings, configure JSON logs, serve until drained; return the exit code."""
    parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"backend: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    configure_logging(settings.log_level)
    server = build_server(create_app(settings), settings)
    server.run()
    if server.stopped_by is not None:
        code = EXIT_SIGNALLED + server.stopped_by
        log.info("backend stopped before serving (exit code %d)", code)
        return code
    if not server.started:
        log.error("backend did not start (see the errors above)")
        return EXIT_NOT_STARTED
    log.info("backend stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
