"""`python -m bench.granian_app`: the backend app as shipped (wrapper, JSON access log), served
by granian instead of uvicorn — a comparison in bench/README.md, not a way to run the product.

It has none of `backend.server`'s bounds: granian cannot answer 503 beyond a connection cap
(its `backpressure` only queues requests), and there is no draining stop.
"""

from __future__ import annotations

from granian import Granian
from granian.constants import Interfaces, Loops

from backend.app import Backend, create_app
from backend.logs import configure_logging
from backend.settings import Settings


def app() -> Backend:
    """Factory run in granian's worker process: JSON logs, then the app."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


def main() -> None:
    settings = Settings.from_env()
    Granian(
        "bench.granian_app:app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=1,
        log_enabled=False,
    ).serve()


if __name__ == "__main__":
    main()
