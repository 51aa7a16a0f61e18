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

import asyncio
import logging
from typing import Any, Callable

from redis.exceptions import RedisError
from tornado.web import HTTPError

from ..auth.apikeys import ApiKeyStoreBase
from ..auth.stores import open_key_store
from ..auth.sessions import SessionStore
from ..auth.users import UserStoreBase
from ..bus import EventBus
from ..core import jsontext
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
CLUSTER_WAIT_SECONDS = 10.0  # a cluster's batch must be in Redis within this, else 503


class Publishing:
    """What the route needs and keeps between requests: the bus, the key store, each user's seen
    ids, and where an event's offset is read when this process numbers events (one node)."""

    def __init__(self, bus: EventBus, database: str, offset_of: Callable[[str], int] | None,
                 external_users: bool, cluster: bool = False,
                 counters: PlatformCounters | None = None) -> None:
        self.bus = bus
        self.cluster = cluster  # the seen ids in Redis, taken by the bus's publish (else ``seen``, this process's)
        self.offset_of = offset_of  # None in a cluster: Redis numbers events on the way
        self.external_users = external_users  # users come from the platform, not our database
        self.seen = SeenIds()
        self.keys: ApiKeyStoreBase = open_key_store(database)  # beside the users (SQLite or PostgreSQL)
        self.counters = counters if counters is not None else PlatformCounters()  # admin stats, /metrics

    @classmethod
    def from_settings(cls, settings: Settings, bus: EventBus, offset_of: Callable[[str], int] | None,
                      counters: PlatformCounters | None = None) -> "Publishing":
        return cls(bus, settings.auth.database, offset_of, bool(settings.auth.external_session_url),
                   bool(settings.cluster.redis_url), counters)


class PublishHandler(PlatformHandler):
    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   publishing: Publishing) -> None:
        super().initialize(sessions, users, clock, publishing.keys, publishing.counters)
        self.publishing = publishing

    async def post(self) -> None:
        key = await self.require_key("publish")
        self.require_json()
        try:
            items = jsontext.loads(self.request.body or b"")
        except jsontext.NotJson as exc:
            raise HTTPError(400, f"The body must be a JSON array of events: {exc}", reason="Invalid JSON") from None
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
        if publishing.cluster:  # ids taken in Redis with the publish itself, whichever node a retry reaches
            published = await self._publish_in_cluster([item for _, item in valid])
        for n, (index, item) in enumerate(valid):
            if publishing.cluster:  # the offset Redis gave it (0: taken by a lost attempt, unknown)
                done, offset = published[n] is None, published[n] or None
            else:
                done, offset = publishing.seen.seen(item.user_id, item.id)
            if done:
                publishing.counters.duplicates += 1
                results[index] = {"index": index, "status": "duplicate", "id": item.id, "offset": offset}
                continue
            if not publishing.cluster:
                publishing.bus.publish(item.event)
                offset = publishing.offset_of(item.user_id) if publishing.offset_of is not None else None
                publishing.seen.add(item.user_id, item.id, offset)
            publishing.counters.accepted += 1
            results[index] = {"index": index, "status": "accepted", "id": item.id, "offset": offset}
        return [r for r in results if r is not None]

    async def _publish_in_cluster(self, items: list[Item]) -> list[int | None]:
        """Publish through the bus's script, each id taken in the same step as its event's publish
        (``EventBus.publish_item``), and answer once Redis has run them all: an ``accepted`` item is
        in Redis (numbered, in the user's state and history, sent to every node), and a node dying
        between the id's claim and the publish can't leave an id taken but its event lost. Per item
        its offset (``publish_item``), None for a duplicate. Redis away (or slower than ``CLUSTER_WAIT_SECONDS``):
        503, and a retry with the same ids delivers each item once."""
        futures = [self.publishing.bus.publish_item(item.event, item.id) for item in items]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), CLUSTER_WAIT_SECONDS))
        except (asyncio.TimeoutError, ConnectionError, RedisError, OSError):
            for future in futures:  # retrieved: the ones that failed or were given up on
                if future.done() and not future.cancelled():
                    future.exception()
            log.warning("publish refused: Redis did not take the batch within %.0f s", CLUSTER_WAIT_SECONDS)
            raise HTTPError(503, "Publishing is unavailable; retry with the same ids",
                            reason="Service Unavailable") from None
