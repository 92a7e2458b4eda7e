"""`python -m bench.backend_app`: the backend exactly as `python -m backend` serves it, except
that the Litestar app runs without the outer metrics/logging wrapper (the "bare" variant)."""

from __future__ import annotations

from backend.app import create_app
from backend.logs import configure_logging
from backend.server import build_server
from backend.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    backend = create_app(settings)
    server = build_server(backend, settings)
    server.config.app = backend.litestar  # same server, same bounds, no wrapper
    server.run()


if __name__ == "__main__":
    main()
