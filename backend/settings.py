"""Backend settings, read from the environment once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """An environment variable has a value the backend cannot use."""


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, default: N, low: N, high: N) -> N:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = type(default)(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a valid {type(default).__name__}; use one in "
            f"[{low:g}, {high:g}] or unset it (default {default:g})."
        ) from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r} is out of range; use a value in [{low:g}, {high:g}].")
    return value


def _database_url(env: Mapping[str, str]) -> str:
    if url := env.get("DATABASE_URL"):
        return url
    user = quote(env.get("POSTGRES_USER", "ironclad_user"), safe="")
    password = quote(env.get("POSTGRES_PASSWORD", ""), safe="")
    host = env.get("POSTGRES_HOST", "localhost")
    port = env.get("POSTGRES_PORT", "5432")
    database = quote(env.get("POSTGRES_DB", "ironclad"), safe="")
    credentials = f"{user}:{password}" if password else user
    return f"postgresql://{credentials}@{host}:{port}/{database}"


@dataclass(frozen=True)
class Settings:
    """Everything the backend reads from its environment (see `from_env` for the names)."""

    database_url: str
    host: str = "0.0.0.0"  # in a container every interface; the local lab sets 127.0.0.1
    port: int = 3000
    chaos_token: str | None = None
    log_level: str = "INFO"
    pool_min: int = 4
    pool_max: int = 10
    db_timeout_s: float = 2.0
    db_reconnect_timeout_s: float = 4.0
    db_startup_timeout_s: float = 30.0
    breaker_failures: int = 5
    breaker_reset_s: float = 2.0
    drain_delay_s: float = 3.0
    shutdown_timeout_s: int = 20
    read_timeout_s: float = 5.0
    max_connections: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ); raise SettingsError on bad values."""
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}.")
        return cls(
            database_url=_database_url(env),
            host=env.get("HOST") or "0.0.0.0",
            port=_number(env, "PORT", 3000, 1, 65535),
            chaos_token=env.get("CHAOS_TOKEN", "").strip() or None,
            log_level=level,
            db_timeout_s=_number(env, "DB_TIMEOUT_S", 2.0, 0.1, 60.0),
            db_startup_timeout_s=_number(env, "DB_STARTUP_TIMEOUT_S", 30.0, 1.0, 600.0),
            drain_delay_s=_number(env, "DRAIN_DELAY_S", 3.0, 0.0, 300.0),
            shutdown_timeout_s=_number(env, "SHUTDOWN_TIMEOUT_S", 20, 0, 600),
            read_timeout_s=_number(env, "READ_TIMEOUT_S", 5.0, 0.5, 60.0),
            max_connections=_number(env, "MAX_CONNECTIONS", 1000, 2, 100_000),
        )
