"""The hub: who is connected, as which user and session, subscribed to what; and the connection
limits (per user, total). Pure bookkeeping, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from .. import constants as c
from ..constants import Close
from .ratelimit import RateGuard


@dataclass(slots=True, eq=False)
class Connection:
    id: int
    name: str
    user_id: str
    session_id: str | None
    opened_at: float
    guard: RateGuard
    channels: frozenset[str] = frozenset()
    # The newest offset this connection has been sent (snapshots included); seq never goes down.
    last_seq: int = 0
    # When the peer was last heard from (a frame or a protocol pong): the heartbeat rule.
    last_heard: float = 0.0


class Hub:
    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self.connections: dict[int, Connection] = {}
        self.by_user: dict[str, dict[int, Connection]] = {}

    def refusal(self, user_id: str) -> Close | None:
        """Why a new connection of ``user_id`` can't be admitted now, or None."""
        if len(self.by_user.get(user_id, ())) >= self.per_user:
            return c.user_limit_close(self.per_user)
        if len(self.connections) >= self.total:
            return c.SERVER_CAPACITY
        return None

    def add(self, conn: Connection) -> None:
        self.connections[conn.id] = conn
        self.by_user.setdefault(conn.user_id, {})[conn.id] = conn

    def remove(self, conn_id: int) -> Connection | None:
        conn = self.connections.pop(conn_id, None)
        if conn is not None:
            mine = self.by_user[conn.user_id]
            del mine[conn_id]
            if not mine:
                del self.by_user[conn.user_id]
        return conn

    def by_channels(self, user_id: str) -> dict[frozenset[str], list[Connection]]:
        """The user's connections that subscribed to something, grouped by their channel set (one
        message is rendered per set)."""
        groups: dict[frozenset[str], list[Connection]] = {}
        for conn in self.by_user.get(user_id, {}).values():
            if conn.channels:
                groups.setdefault(conn.channels, []).append(conn)
        return groups

    def of_session(self, session_id: str) -> list[Connection]:
        return [conn for conn in self.connections.values() if conn.session_id == session_id]

    def counts_by_user(self) -> dict[str, int]:
        return {user: len(conns) for user, conns in self.by_user.items()}
