"""``POST /api/v1/publish``: another server hands portfolio-ws events for its users.

Server to server: a bearer API key with the ``publish`` scope (``portfolio-ws keys``), never a
session cookie. The body is a JSON array of at most ``MAX_ITEMS`` items, at most ``MAX_BODY_BYTES``
(a larger body is refused 413 by the accept layer before it is read). Each item is checked on its
own (``ingest.items``: the events' schema, a known user, the feed guard's check; a Redis stream's
entries pass the same), and the valid ones are published on the bus, exactly as a feed's events
are, even when others in the batch are refused. The answer lists, per item index, ``accepted``
with its offset, ``duplicate`` (an id already taken for that user: not delivered again) or
``rejected`` with the field and why. The counts agree with the results: ``accepted`` is the items
delivered now, ``duplicates`` those answered ``duplicate``, ``rejected`` the refused ones (the Python
publisher's ``PublishResult`` has the same three lists).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import ujson
from redis.exceptions import RedisError
from tornado.web import HTTPError

from ..auth.apikeys import ApiKeyStoreBase
from ..auth.stores import open_key_store
from ..auth.sessions import SessionStore
from ..auth.users import UserStoreBase
from ..bus import EventBus
from ..cluster.published import RedisSeenIds
from ..core.ingest import Item, ItemError
from ..core.seen import SeenIds
from ..ingest.items import check_items
from ..settings import Settings
from .admin import PlatformCounters
from .http import encodable
from .platform import PlatformHandler

log = logging.getLogger("portfolio_ws.publish")

PATH = "/api/v1/publish"
MAX_ITEMS = 500
MAX_BODY_BYTES = 1024 * 1024  # 500 full order items are ~250 KB


class Publishing:
    """What the route needs and keeps between requests: the bus, the key store, each user's seen
    ids, and where an event's offset is read when this process numbers events (one node)."""

    def __init__(self, bus: EventBus, database: str, offset_of: Callable[[str], int] | None,
                 external_users: bool, shared: RedisSeenIds | None = None,
                 counters: PlatformCounters | None = None) -> None:
        self.bus = bus
        self.shared = shared  # cluster mode: the seen ids in Redis (else ``seen``, this process's)
        self.offset_of = offset_of  # None in a cluster: Redis numbers events on the way
        self.external_users = external_users  # users come from the platform, not our database
        self.seen = SeenIds()
        self.keys: ApiKeyStoreBase = open_key_store(database)  # beside the users (SQLite or PostgreSQL)
        self.counters = counters if counters is not None else PlatformCounters()  # admin stats, /metrics

    @classmethod
    def from_settings(cls, settings: Settings, bus: EventBus, offset_of: Callable[[str], int] | None,
                      counters: PlatformCounters | None = None) -> "Publishing":
        cluster = settings.cluster
        shared = RedisSeenIds(cluster.redis_url, cluster.key_prefix) if cluster.redis_url else None
        return cls(bus, settings.auth.database, offset_of, bool(settings.auth.external_session_url), shared, counters)


class PublishHandler(PlatformHandler):
    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   publishing: Publishing) -> None:
        super().initialize(sessions, users, clock, publishing.keys, publishing.counters)
        self.publishing = publishing

    async def post(self) -> None:
        key = await self.require_key("publish")
        self.require_json()
        try:
            items = ujson.loads(self.request.body or b"")
        except (ValueError, OverflowError, RecursionError):
            raise HTTPError(400, "The body must be a JSON array of events", reason="Invalid JSON") from None
        if not isinstance(items, list) or not encodable(items):
            raise HTTPError(400, "The body must be a JSON array of events (valid Unicode)", reason="Invalid JSON")
        if not items or len(items) > MAX_ITEMS:
            raise HTTPError(400, f"Send 1 to {MAX_ITEMS} events per request", reason="Invalid Request")
        results = await self._publish(items)
        counts = {status: sum(1 for r in results if r["status"] == status)
                  for status in ("accepted", "duplicate", "rejected")}
        log.info("publish key=%s: %d accepted, %d duplicates, %d rejected", key.name, counts["accepted"],
                 counts["duplicate"], counts["rejected"])
        self.write_json(200, {"accepted": counts["accepted"], "duplicates": counts["duplicate"],
                              "rejected": counts["rejected"], "results": results})

    async def _publish(self, items: list[Any]) -> list[dict[str, Any]]:
        publishing = self.publishing
        parsed = await check_items(items, self.users, publishing.external_users)
        results: list[dict[str, Any] | None] = [None] * len(parsed)
        valid: list[tuple[int, Item]] = []
        for index, item in enumerate(parsed):
            if isinstance(item, ItemError):
                publishing.counters.rejected += 1
                results[index] = {"index": index, "status": "rejected", "field": item.field, "message": item.message}
            else:
                valid.append((index, item))
        shared = publishing.shared
        if shared is not None:  # a cluster: ids claimed in Redis, whichever node a retry reaches
            try:
                fresh = await shared.claim([(item.user_id, item.id) for _, item in valid])
            except (RedisError, OSError):
                log.warning("publish refused: the published ids (Redis) can't be reached")
                raise HTTPError(503, "Publishing is unavailable; retry with the same ids",
                                reason="Service Unavailable") from None
        for n, (index, item) in enumerate(valid):
            if shared is not None:
                done, offset = not fresh[n], None
            else:
                done, offset = publishing.seen.seen(item.user_id, item.id)
            if done:
                publishing.counters.duplicates += 1
                results[index] = {"index": index, "status": "duplicate", "id": item.id, "offset": offset}
                continue
            publishing.bus.publish(item.event)
            offset = publishing.offset_of(item.user_id) if publishing.offset_of is not None else None
            if shared is None:
                publishing.seen.add(item.user_id, item.id, offset)
            publishing.counters.accepted += 1
            results[index] = {"index": index, "status": "accepted", "id": item.id, "offset": offset}
        return [r for r in results if r is not None]
