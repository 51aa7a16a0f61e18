"""The API keys in PostgreSQL (``auth.database`` = ``postgresql://...``), beside the users there.
Same contract as the SQLite store (``apikeys.ApiKeyStoreBase``; tests/unit/portfolio_ws/auth/
test_apikeys.py runs both): only each secret's SHA-256 digest is stored.
"""

from __future__ import annotations

import time
from typing import Callable

import psycopg

from .apikeys import ApiKeyStoreBase
from .postgres import PostgresTables

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS api_keys (
        key_id     TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        scopes     TEXT NOT NULL,
        digest     TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )
    """,
    # Unique without regard to case, as SQLite's COLLATE NOCASE column.
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_name ON api_keys (lower(name))",
)


class PostgresApiKeyStore(PostgresTables, ApiKeyStoreBase):
    NAME_MATCH = "lower(name) = lower(%s)"
    DUPLICATE = (psycopg.errors.UniqueViolation,)
    SCHEMA = _SCHEMA

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        ApiKeyStoreBase.__init__(self, clock)
        self._connect(url)
