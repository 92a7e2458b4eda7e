"""ASGI factories for the backend benchmark: with and without the outer metrics wrapper."""

from __future__ import annotations

from litestar import Litestar

from backend.app import Backend, create_app
from backend.logs import configure_logging
from backend.settings import Settings


def wrapped() -> Backend:
    """The app as `python -m backend` serves it."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


def bare() -> Litestar:
    """The same Litestar app without the metrics/logging wrapper."""
    return wrapped().litestar
