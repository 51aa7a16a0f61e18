"""The names of the Redis bus's keys and what each holds.

Keys (``prefix`` default ``pws:``; per-user keys hash-tagged ``{<user>}``, so each user's keys,
which one script touches together, share a Redis Cluster slot):
- ``<p>events:{<user>}``: the user's sharded channel (SPUBLISH; nodes SSUBSCRIBE while they
  follow the user); a message is ``"<seq> <json of codec.to_dict(event)>"`` (a sync's:
  ``codec.sync_to_dict``). ``<p>events`` (plain SUBSCRIBE) carries nothing: holding it keeps the
  subscription connection checked while idle.
- ``<p>seq:{<user>}``: the user's last offset (INCR). Created at the publisher's clock in ms, so
  after Redis lost its data new offsets are above every old one (like ``StreamCore.seq_base``).
- ``<p>recovery:{<user>}``: the user's last ``max_events`` events, entry id ``<seq>-1``, field ``e``
  the event (``s`` a sync, which empties what came before it), ``t`` the publish time; the key
  expires ``max_age`` after the user's last event.
- ``<p>state:{<user>}``, ``<p>trades:{<user>}``: the user's portfolio state at that offset (bus/state.py).
  With the offset, they expire ``cluster.state_keep_days`` after the user's last event or load.
- ``<p>published:{<user>}:<node>:<incarnation>:<n>``: short-lived marker so a publish retried after
  a lost reply runs once. ``<incarnation>`` is random per bus instance (one per process run): a node
  restarted under the same id (or a ``--workers`` worker) counts ``n`` from 1 again, and with
  ``<node>:<n>`` alone its new events hit its previous run's markers and were discarded.
- ``<p>published:{<user>}``: the ids of published items the user had (``cluster/published.py``), taken
  by the script with the event for ``publish_item`` (Redis Streams ingest).
- ``<p>position:{<user>}``: the user's last source position (``EventBus.publish``), ``<epoch>:<n>``; an
  event at or below it in the same epoch is refused (counted ``deduplicated``). Kept a week.
"""

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
