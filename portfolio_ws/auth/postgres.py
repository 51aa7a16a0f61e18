"""Connecting to PostgreSQL (``auth.database`` = ``postgresql://...``): one home for telling a
PostgreSQL URL from a SQLite path, opening pools, and turning connection failures into one line
naming the setting; and ``PostgresTables``, the plumbing every PostgreSQL store shares.
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

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


class PostgresTables:
    """One blocking connection (the command line, start-up) and an async pool opened at the first
    use on the running loop (the server's request path), for a store's ``%s`` statements."""

    SCHEMA: tuple[str, ...] = ()

    def _connect(self, url: str) -> None:
        self.url = url
        self._conn = connect(url)
        for statement in self.SCHEMA:
            self._conn.execute(statement)
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    async def _async_pool(self) -> AsyncConnectionPool:
        async with self._opening:
            if self._pool is None:
                self._pool = await open_pool(self.url)
        return self._pool

    async def _afetchall(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        async with (await self._async_pool()).connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def _aexecute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        async with (await self._async_pool()).connection() as conn:
            return (await conn.execute(sql, params)).rowcount

    def close(self) -> None:
        self._conn.close()

    async def aclose(self) -> None:
        self.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
