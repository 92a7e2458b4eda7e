"""`python -m backend`: serve with uvicorn (one worker) on $PORT, draining on SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from types import FrameType

import uvicorn

from backend.app import Backend, create_app
from backend.logs import configure_logging
from backend.settings import Settings, SettingsError

log = logging.getLogger("backend")


class DrainingServer(uvicorn.Server):
    """uvicorn server whose first SIGTERM/SIGINT drains instead of stopping at once.

    Readiness turns 503 immediately; requests (in flight and new ones) are still served for
    `drain_delay_s` so load balancers can notice; then uvicorn's graceful shutdown waits for the
    requests in flight, the lifespan closes the pool, and the process exits with code 0.
    A second signal stops at once (uvicorn's own behaviour).
    """

    def __init__(self, config: uvicorn.Config, backend: Backend, drain_delay_s: float) -> None:
        super().__init__(config)
        self.backend = backend
        self.drain_delay_s = drain_delay_s
        self.stop_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_at is not None or sig not in (signal.SIGTERM, signal.SIGINT):
            super().handle_exit(sig, frame)
            return
        self.backend.start_draining()
        self.stop_at = time.monotonic() + self.drain_delay_s

    async def on_tick(self, counter: int) -> bool:
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            return True
        return await super().on_tick(counter)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """No options: everything comes from the environment (--help lists it)."""
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="Serve the Ironclad backend (uvicorn, one worker) until SIGTERM, then drain.",
        epilog="Configured by environment variables only: PORT, DATABASE_URL or "
        "POSTGRES_HOST/PORT/DB/USER/PASSWORD, CHAOS_TOKEN, LOG_LEVEL (see backend/README.md).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Read settings, configure JSON logs, serve until drained; return the exit code."""
    parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"backend: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    backend = create_app(settings)
    config = uvicorn.Config(
        backend,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    server = DrainingServer(config, backend, settings.drain_delay_s)
    server.run()
    if not server.started:
        log.error("backend did not start (see the errors above)")
        return 3
    log.info("backend stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
