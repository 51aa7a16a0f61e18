"""``SessionStore`` in PostgreSQL (``auth.database`` = ``postgresql://...``): sessions every node on
every host shares, surviving any Redis. psycopg 3 with an async connection pool, so a lookup
never blocks the IOLoop and a burst of upgrades waits its turn for a connection.

Same rules as the SQLite store (``tests/unit/portfolio_ws/auth/sessions/test_contract.py`` runs both): only the
SHA-256 of each id is stored; a lookup writes ``last_seen_at`` only when it is a touch interval old.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from ...settings import AuthSettings
from ..postgres import open_pool
from . import (
    SQL_SCHEMA,
    Session,
    SessionLifetime,
    SessionStore,
    new_session_id,
    plausible_session_id,
    session_digest,
)

_SCHEMA = tuple(statement.replace("REAL", "DOUBLE PRECISION") for statement in SQL_SCHEMA)


class PostgresSessionStore(SessionStore):
    """Sessions in the ``sessions`` table of the PostgreSQL database at ``url``. Call ``open()``
    (or use ``connect``) before the first request: it creates the table and fills the pool."""

    def __init__(self, url: str, lifetime: SessionLifetime) -> None:
        self.lifetime = lifetime
        self.url = url
        self._pool: AsyncConnectionPool | None = None

    @classmethod
    async def connect(cls, url: str, lifetime: SessionLifetime) -> PostgresSessionStore:
        store = cls(url, lifetime)
        await store.open()
        return store

    @classmethod
    async def from_settings(cls, settings: AuthSettings) -> PostgresSessionStore:
        return await cls.connect(settings.database, SessionLifetime.from_settings(settings))

    async def open(self) -> None:
        self._pool = await open_pool(self.url)
        async with self._pool.connection() as conn:
            for statement in _SCHEMA:
                await conn.execute(statement)

    @property
    def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("PostgresSessionStore used before open()")
        return self._pool

    async def create(self, user_id: str, now: float) -> str:
        session_id = new_session_id()
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO sessions (digest, user_id, created_at, last_seen_at) VALUES (%s, %s, %s, %s)",
                (session_digest(session_id), user_id, now, now))
        return session_id

    async def lookup(self, session_id: str, now: float) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        digest = session_digest(session_id)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT user_id, created_at, last_seen_at FROM sessions WHERE digest = %s", (digest,))
            row = await cursor.fetchone()
            if row is None:
                return None
            user_id, created_at, last_seen_at = row
            if self.lifetime.is_expired(created_at, last_seen_at, now):
                await conn.execute("DELETE FROM sessions WHERE digest = %s", (digest,))
                return None
            if self.lifetime.needs_touch(last_seen_at, now):
                last_seen_at = now
                # GREATEST: two nodes touching at once never move the time back.
                await conn.execute("UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, %s) WHERE digest = %s",
                                   (now, digest))
        return Session(session_id, user_id, created_at, last_seen_at)

    async def delete(self, session_id: str) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM sessions WHERE digest = %s RETURNING user_id, created_at, last_seen_at",
                (session_digest(session_id),))
            row = await cursor.fetchone()
        return Session(session_id, *row) if row else None

    async def delete_for_user(self, user_id: str) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))
            return cursor.rowcount

    async def purge_expired(self, now: float) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM sessions WHERE last_seen_at + %s <= %s OR created_at + %s <= %s",
                (self.lifetime.idle_seconds, now, self.lifetime.absolute_seconds, now))
            return cursor.rowcount

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
