"""Settings.from_env: names, defaults, and clear errors."""

from __future__ import annotations

import pytest

from backend.settings import Settings, SettingsError


def test_defaults_build_the_url_from_postgres_vars() -> None:
    settings = Settings.from_env(
        {
            "POSTGRES_HOST": "db",
            "POSTGRES_PORT": "5433",
            "POSTGRES_DB": "ironclad",
            "POSTGRES_USER": "u",
            "POSTGRES_PASSWORD": "p@ss/word",
        }
    )
    assert settings.database_url == "postgresql://u:p%40ss%2Fword@db:5433/ironclad"
    assert settings.port == 3000
    assert settings.chaos_token is None
    assert settings.log_level == "INFO"
    assert (settings.pool_min, settings.pool_max) == (4, 10)


def test_database_url_wins_and_other_vars_are_read() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://x@h/d",
            "POSTGRES_HOST": "no",
            "PORT": "8080",
            "CHAOS_TOKEN": "t",
            "LOG_LEVEL": "debug",
            "DRAIN_DELAY_S": "0.5",
        }
    )
    assert settings.database_url == "postgresql://x@h/d"
    assert settings.port == 8080
    assert settings.chaos_token == "t"
    assert settings.log_level == "DEBUG"
    assert settings.drain_delay_s == 0.5


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_blank_chaos_token_means_unconfigured(blank: str) -> None:
    assert Settings.from_env({"CHAOS_TOKEN": blank}).chaos_token is None


def test_chaos_token_loses_surrounding_whitespace() -> None:
    """A Secret made from a file often ends with a newline; the client never sends it."""
    assert Settings.from_env({"CHAOS_TOKEN": " s3cret\n"}).chaos_token == "s3cret"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "http", "not a valid int"),
        ("PORT", "3000.5", "not a valid int"),
        ("PORT", "70000", "out of range"),
        ("DRAIN_DELAY_S", "-1", "out of range"),
        ("DB_TIMEOUT_S", "soon", "not a valid float"),
        ("LOG_LEVEL", "LOUD", "not one of"),
    ],
)
def test_bad_values_are_rejected_with_the_variable_name(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        Settings.from_env({name: value})
    assert name in str(raised.value)
