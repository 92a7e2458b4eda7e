"""`python -m bench.backend_app [--unmetered]`: the backend exactly as `python -m backend` serves
it, except for one thing, to measure what that thing costs:

- default ("bare" variant): the Litestar app runs without the outer wrapper (no metrics, request
  ids, body bound, 499 recording or access log);
- `--unmetered`: the wrapper stays, but it records no HTTP metrics (its per-request update of
  the requests/duration series is a no-op): the wrapper's cost minus the metrics'.
"""

from __future__ import annotations

import argparse

from backend.app import create_app
from backend.logs import configure_logging
from backend.server import build_server
from backend.settings import Settings


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli.add_argument("--unmetered", action="store_true", help="keep the wrapper, drop its metrics")
    args = cli.parse_args()
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    backend = create_app(settings)
    server = build_server(backend, settings)
    if args.unmetered:
        backend.metrics.http.observe = lambda *_: None  # type: ignore[method-assign]
    else:
        server.config.app = backend.litestar  # same server, same bounds, no wrapper
    server.run()


if __name__ == "__main__":
    main()
