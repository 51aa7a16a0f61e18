"""The user accounts in PostgreSQL (``auth.database`` = ``postgresql://...``), for nodes on more
than one host. Same contract as the SQLite store (``users.UserStoreBase``; the tests in
tests/unit/portfolio_ws/auth/test_users.py run both).

The command line and start-up use one blocking connection; the server's request path (the user of
a session, logins) an async pool, opened at the first use on the running loop.
"""

from __future__ import annotations

import time
from typing import Callable

import psycopg
from argon2 import PasswordHasher

from .postgres import PostgresTables
from .users import UserStoreBase

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS users (
        user_id       TEXT PRIMARY KEY,
        username      TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_at    DOUBLE PRECISION NOT NULL
    )
    """,
    # Unique without regard to case, as SQLite's COLLATE NOCASE column.
    "CREATE UNIQUE INDEX IF NOT EXISTS users_username ON users (lower(username))",
)


class PostgresUserStore(PostgresTables, UserStoreBase):
    NAME_MATCH = "lower(username) = lower(%s)"
    DUPLICATE = (psycopg.errors.UniqueViolation,)
    SCHEMA = _SCHEMA

    def __init__(self, url: str, *, hasher: PasswordHasher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        UserStoreBase.__init__(self, hasher=hasher, clock=clock)
        self._connect(url)
