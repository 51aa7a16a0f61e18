"""The names of the Redis bus's keys (bus/redis.py's docstring says what each holds). Per-user keys
are hash-tagged ``{<user>}``: one script touches them together, so they share a Redis Cluster slot."""

from __future__ import annotations

from ..cluster.equity import equity_key
from ..cluster.keys import user_key
from ..cluster.published import seen_key


class BusKeys:
    prefix: str
    node_id: str | None
    incarnation: str

    def seq_key(self, user_id: str) -> str:
        return user_key(self.prefix, "seq", user_id)

    def recovery_key(self, user_id: str) -> str:
        return user_key(self.prefix, "recovery", user_id)

    def position_key(self, user_id: str) -> str:
        return user_key(self.prefix, "position", user_id)

    def state_key(self, user_id: str) -> str:
        return user_key(self.prefix, "state", user_id)

    def trades_key(self, user_id: str) -> str:
        return user_key(self.prefix, "trades", user_id)

    def marker_key(self, user_id: str, number: int) -> str:
        return user_key(self.prefix, "published", user_id, str(self.node_id), self.incarnation, str(number))

    def seen_key(self, user_id: str) -> str:
        return seen_key(self.prefix, user_id)

    def equity_key(self, user_id: str) -> str:
        return equity_key(self.prefix, user_id)

    def user_channel(self, user_id: str) -> str:
        return user_key(self.prefix, "events", user_id)
