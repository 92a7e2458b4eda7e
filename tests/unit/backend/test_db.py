"""Pure parts of backend.db: the sessions' server-side timeouts."""

from __future__ import annotations

from backend.db import session_options


def test_sessions_get_statement_timeout_and_half_of_it_as_lock_timeout() -> None:
    assert session_options("postgresql://u@h/d", 2.0) == (
        "-c statement_timeout=2000 -c lock_timeout=1000"
    )


def test_options_in_the_url_come_last_so_they_win() -> None:
    url = "postgresql://u@h/d?options=-c%20lock_timeout%3D0"
    assert session_options(url, 0.5) == (
        "-c statement_timeout=500 -c lock_timeout=250 -c lock_timeout=0"
    )
