"""The session store interface: server-side sessions created at login and looked up on every
request and WebSocket upgrade.

Rules every implementation keeps (``tests/unit/portfolio_ws/auth/sessions/test_contract.py`` checks them):
- a session id is 256 random bits (``secrets.token_urlsafe(32)``), handed to the client once; the
  store keeps only its SHA-256 (``session_digest``), so a leak of the store leaks no live session;
- a session ends ``idle_seconds`` after it was last seen or ``absolute_seconds`` after it was
  created, whichever comes first (``SessionLifetime``);
- time comes in as ``now`` (epoch seconds); no implementation reads the clock;
- ids are never logged: ``Session``'s repr leaves the id out.

``sqlite.SQLiteSessionStore``, ``postgres.PostgresSessionStore`` and ``external.ExternalSessionStore``
implement it; ``redis.RedisSessionCache`` caches one of them in Redis for a cluster.
Methods are coroutines so a networked store doesn't block the IOLoop.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...errors import UsageError
from ...settings import AuthSettings

if TYPE_CHECKING:
    from ..users import User

# Longest session id accepted for lookup; ours are 43 characters. Anything longer is not ours.
MAX_SESSION_ID_LENGTH = 128
# Upper bound on how stale ``last_seen_at`` may be kept to save writes (see SessionLifetime).
MAX_TOUCH_INTERVAL_SECONDS = 60.0


# The ``sessions`` table of the SQL stores (SQLite's REAL is PostgreSQL's DOUBLE PRECISION):
# one definition, so the two stores can't drift apart.
SQL_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS sessions (
        digest       TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL,
        created_at   REAL NOT NULL,
        last_seen_at REAL NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id)",
)


@dataclass(frozen=True)
class Session:
    session_id: str = field(repr=False)
    user_id: str
    created_at: float  # epoch seconds
    last_seen_at: float  # epoch seconds; may lag the latest lookup by up to touch_interval_seconds
    # The user, when the store knows it and the local user database does not (external sessions).
    user: "User | None" = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SessionLifetime:
    """When sessions end. ``touch_interval_seconds``: a lookup records ``last_seen_at`` only when
    the stored value is at least this old, keeping most lookups read-only. That can end an idle
    session up to this much early, so it defaults to a tenth of the idle timeout, at most 60 s."""

    idle_seconds: float
    absolute_seconds: float
    touch_interval_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.idle_seconds > 0:
            raise UsageError(f"session idle timeout must be positive, not {self.idle_seconds}")
        if not self.absolute_seconds > 0:
            raise UsageError(f"session lifetime must be positive, not {self.absolute_seconds}")
        if self.touch_interval_seconds is None:
            interval = min(MAX_TOUCH_INTERVAL_SECONDS, self.idle_seconds / 10)
            object.__setattr__(self, "touch_interval_seconds", interval)

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> SessionLifetime:
        return cls(settings.session_idle_seconds, settings.session_absolute_seconds)

    @property
    def touch_interval(self) -> float:
        assert self.touch_interval_seconds is not None  # set in __post_init__
        return self.touch_interval_seconds

    def expires_at(self, created_at: float, last_seen_at: float) -> float:
        """The first instant at which a session with these times is no longer valid."""
        return min(last_seen_at + self.idle_seconds, created_at + self.absolute_seconds)

    def is_expired(self, created_at: float, last_seen_at: float, now: float) -> bool:
        return now >= self.expires_at(created_at, last_seen_at)

    def needs_touch(self, last_seen_at: float, now: float) -> bool:
        return now - last_seen_at >= self.touch_interval


def new_session_id() -> str:
    """A fresh session id: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def session_digest(session_id: str) -> str:
    """What a store keeps instead of the id (SHA-256, hex). Also safe to use as a log or map key."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def plausible_session_id(session_id: object) -> bool:
    """Whether ``session_id`` is worth looking up at all (a non-empty string of sane length)."""
    return isinstance(session_id, str) and 0 < len(session_id) <= MAX_SESSION_ID_LENGTH


class SessionStore(ABC):
    """Server-side sessions. ``lifetime`` says when they end."""

    lifetime: SessionLifetime

    @abstractmethod
    async def create(self, user_id: str, now: float) -> str:
        """Start a session for ``user_id``; returns its new id, to be set as the session cookie.
        The id is not retrievable later: only its digest is stored."""

    @abstractmethod
    async def lookup(self, session_id: str, now: float) -> Session | None:
        """The live session with this id, its idle timer reset; ``None`` if unknown or expired
        (an expired session is deleted). The caller must still check the user exists."""

    async def still_valid(self, session_id: str, now: float) -> bool | None:
        """Whether an open socket's session still holds: True, False (close it 1008), or None when
        the store can't tell right now (keep it; only the external store ever can't tell)."""
        return await self.lookup(session_id, now) is not None

    @abstractmethod
    async def delete(self, session_id: str) -> Session | None:
        """End the session (logout); returns it, or ``None`` if there was none. The caller closes
        the session's sockets (1008 ``Session expired``)."""

    @abstractmethod
    async def delete_for_user(self, user_id: str) -> int:
        """End every session of ``user_id`` (user removed); returns how many ended."""

    @abstractmethod
    async def purge_expired(self, now: float) -> int:
        """Delete sessions expired at ``now``; returns how many. Call it periodically."""

    async def close(self) -> None:
        """Release resources. The default has none."""
