"""Connecting to PostgreSQL (``auth.database`` = ``postgresql://...``): one home for telling a
PostgreSQL URL from a SQLite path, opening pools, and turning connection failures into one line
naming the setting.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..errors import UsageError

SCHEMES = ("postgresql://", "postgres://")
POOL_MIN, POOL_MAX = 1, 20   # per store and process; PostgreSQL's default max_connections is 100
CONNECT_SECONDS = 5.0         # a database that can't be reached at start stops the server at once
WAIT_SECONDS = 5.0            # a request waits this long for a free pooled connection


def is_postgres(database: str) -> bool:
    return database.startswith(SCHEMES)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://<unparsable URL>"
    host, port, name = info.get("host", ""), info.get("port", ""), info.get("dbname", "")
    return f"postgresql://{info.get('user', '')}@{host}{':' + str(port) if port else ''}/{name}"


async def open_pool(url: str) -> AsyncConnectionPool:
    """An opened pool of autocommit connections (each statement is atomic on its own). Raises
    ``UsageError`` when the database can't be reached within ``CONNECT_SECONDS``."""
    pool = AsyncConnectionPool(url, min_size=POOL_MIN, max_size=POOL_MAX, timeout=WAIT_SECONDS,
                               kwargs={"autocommit": True, "connect_timeout": int(CONNECT_SECONDS)},
                               open=False)
    try:
        await pool.open(wait=True, timeout=CONNECT_SECONDS)
    except (PoolTimeout, psycopg.Error) as exc:
        await pool.close()
        raise UsageError(f"cannot connect to {redacted(url)} ({type(exc).__name__})") from None
    return pool


def connect(url: str) -> psycopg.Connection:  # type: ignore[type-arg]
    """One blocking autocommit connection, for the command line and start-up."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_SECONDS))
    except psycopg.Error as exc:
        raise UsageError(f"cannot connect to {redacted(url)} ({type(exc).__name__})") from None
