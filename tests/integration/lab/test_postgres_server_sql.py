"""lab.postgres.PostgresServer builds its bootstrap SQL with psycopg.sql (issue 12, item 8)."""

from __future__ import annotations

import psycopg

from lab.postgres import PostgresServer


def test_names_and_password_with_quotes_are_quoted_not_spliced() -> None:
    """With f-string SQL, a quote in the password or a name ends the literal (a syntax error
    at best, injected SQL at worst); quoted by psycopg.sql, they are just characters."""
    with (
        PostgresServer(
            database="lab's db", user='o"brien', password="it's; DROP ROLE postgres; --"
        ) as server,
        psycopg.connect(
            host="127.0.0.1",
            port=server.port,
            dbname=server.database,
            user=server.user,
            password=server.password,
        ) as conn,
    ):
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ('o"brien', "lab's db")
