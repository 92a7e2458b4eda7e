"""`python -m bench.backend_app [--unmetered | --header-only]`: the backend exactly as `python -m
backend` serves it, except for one thing, to measure what that thing costs:

- default ("bare" variant): the Litestar app runs without the outer wrapper (no metrics, request
  ids, body bound, 499 recording or access log);
- `--unmetered`: the wrapper stays, but it records no HTTP metrics (its per-request update of
  the requests/duration series is a no-op): the wrapper's cost minus the metrics';
- `--header-only`: instead of the wrapper, the least any wrapper with the backend's X-Request-ID
  feature does: an outer ASGI layer that puts a fresh id on every response, and nothing else
  (no context variable, metrics, timing, body bound or log): that feature's floor.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.app import create_app
from backend.logs import configure_logging
from backend.server import build_server
from backend.settings import Settings


class HeaderOnly:
    """An outer ASGI layer that only adds `x-request-id` (a fresh id, as the wrapper makes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ids = iter(range(1 << 124, 1 << 128))  # 32 hex digits, as the wrapper's ids have

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", b"%x" % next(self.ids))

        def send_tagged(message: Message) -> Awaitable[None]:  # as cheap as the wrapper's
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            return send(message)

        await self.app(scope, receive, send_tagged)


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    variant = cli.add_mutually_exclusive_group()
    variant.add_argument(
        "--unmetered", action="store_true", help="keep the wrapper, drop its metrics"
    )
    variant.add_argument("--header-only", action="store_true", help="only an X-Request-ID layer")
    args = cli.parse_args()
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    backend = create_app(settings)
    server = build_server(backend, settings)
    if args.unmetered:
        backend.metrics.http.observe = lambda *_: None  # type: ignore[method-assign]
    elif args.header_only:
        server.config.app = HeaderOnly(backend.litestar)
    else:
        server.config.app = backend.litestar  # same server, same bounds, no wrapper
    server.run()


if __name__ == "__main__":
    main()
