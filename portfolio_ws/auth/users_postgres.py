"""The user accounts in PostgreSQL (``auth.database`` = ``postgresql://...``), for nodes on more
than one host. Same contract as the SQLite store (``users.UserStoreBase``; the tests in
tests/unit/portfolio_ws/auth/test_users.py run both).

The command line and start-up use one blocking connection; the server's request path (the user of
a session, logins) an async pool, opened at the first use on the running loop.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from typing import Any, Callable

import psycopg
from argon2 import PasswordHasher
from psycopg_pool import AsyncConnectionPool

from .postgres import connect, open_pool
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


class PostgresUserStore(UserStoreBase):
    NAME_MATCH = "lower(username) = lower(%s)"
    DUPLICATE = (psycopg.errors.UniqueViolation,)

    def __init__(self, url: str, *, hasher: PasswordHasher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(hasher=hasher, clock=clock)
        self.url = url
        self._conn = connect(url)
        for statement in _SCHEMA:
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
