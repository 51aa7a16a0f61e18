"""``SessionStore`` in the SQLite file that holds the users: for a single server process.

Only the SHA-256 of each session id is stored (``sessions.session_digest``).
"""

from __future__ import annotations

from ...settings import AuthSettings
from ..database import open_database
from . import (
    SQL_SCHEMA,
    Session,
    SessionLifetime,
    SessionStore,
    new_session_id,
    plausible_session_id,
    session_digest,
)

_SCHEMA = SQL_SCHEMA


class SQLiteSessionStore(SessionStore):
    """Sessions in the ``sessions`` table of the SQLite file at ``database``.

    Calls finish synchronously (a local file, a few indexed statements); one connection per store,
    used from one thread.
    """

    def __init__(self, database: str, lifetime: SessionLifetime) -> None:
        self.lifetime = lifetime
        self._conn = open_database(database)
        for statement in _SCHEMA:
            self._conn.execute(statement)

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> SQLiteSessionStore:
        return cls(settings.database, SessionLifetime.from_settings(settings))

    async def create(self, user_id: str, now: float) -> str:
        session_id = new_session_id()
        self._conn.execute(
            "INSERT INTO sessions (digest, user_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
            (session_digest(session_id), user_id, now, now),
        )
        return session_id

    async def lookup(self, session_id: str, now: float) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        digest = session_digest(session_id)
        row = self._conn.execute(
            "SELECT user_id, created_at, last_seen_at FROM sessions WHERE digest = ?", (digest,)
        ).fetchone()
        if row is None:
            return None
        user_id, created_at, last_seen_at = row
        if self.lifetime.is_expired(created_at, last_seen_at, now):
            self._conn.execute("DELETE FROM sessions WHERE digest = ?", (digest,))
            return None
        if self.lifetime.needs_touch(last_seen_at, now):
            last_seen_at = now
            self._conn.execute(
                "UPDATE sessions SET last_seen_at = ? WHERE digest = ?", (now, digest)
            )
        return Session(session_id, user_id, created_at, last_seen_at)

    async def delete(self, session_id: str) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        # fetchall, not fetchone: the statement (and its write lock) ends only once fully read.
        rows = self._conn.execute(
            "DELETE FROM sessions WHERE digest = ? RETURNING user_id, created_at, last_seen_at",
            (session_digest(session_id),),
        ).fetchall()
        return Session(session_id, *rows[0]) if rows else None

    async def delete_for_user(self, user_id: str) -> int:
        return self._conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount

    async def purge_expired(self, now: float) -> int:
        cursor = self._conn.execute(
            "DELETE FROM sessions WHERE last_seen_at + ? <= ? OR created_at + ? <= ?",
            (self.lifetime.idle_seconds, now, self.lifetime.absolute_seconds, now),
        )
        return cursor.rowcount

    async def close(self) -> None:
        self._conn.close()
