"""Exactly one node runs the feed: a Redis lock with a TTL, renewed by its holder.

``LeaderFeed`` wraps the configured feed (simulator or Alpaca). Every node runs one; the node that
holds ``<prefix>feed-leader`` runs the real feed, the others wait. The holder renews the lock every
third of ``ttl``; if it dies, the lock lapses within ``ttl`` and another node takes over. A holder
that cannot renew (Redis unreachable, or the lock taken) stops its feed, so two feeds never run
longer than one renewal interval together.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..bus import EventBus
from ..core.health import FeedHealth
from . import Feed

log = logging.getLogger(__name__)

# KEYS: lock. ARGV: node id, ttl ms. Takes a free lock or renews our own; 1 if we hold it after.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderFeed(Feed):
    def __init__(self, feed: Feed, url: str, node_id: str, ttl_seconds: float, prefix: str = "pws:") -> None:
        self.feed = feed
        self.source = feed.source
        self.node_id = node_id
        self.ttl = ttl_seconds
        self.key = f"{prefix}feed-leader"
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True,
                                                             socket_connect_timeout=2.0)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        self._bus: EventBus | None = None
        self.leading = False
        self.changed = asyncio.Event()  # set on every change of ``leading`` (tests await it)

    async def start(self, bus: EventBus) -> None:
        self._bus = bus
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                held = bool(await self._acquire(keys=[self.key], args=[self.node_id, int(self.ttl * 1000)]))
            except (RedisError, OSError) as exc:
                log.warning("feed lock: cannot reach Redis (%s)", exc)
                held = False
            if held != self.leading:
                await self._become(held)
            await asyncio.sleep(self.ttl / 3)  # the renewal period: a timer, not a wait for an outcome

    async def _become(self, leading: bool) -> None:
        self.leading = leading
        if leading:
            log.info("feed lock: node %s runs the %s feed", self.node_id, self.source)
            assert self._bus is not None
            await self.feed.start(self._bus)
        else:
            log.warning("feed lock: node %s lost the lock; stopping its feed", self.node_id)
            await self.feed.stop()
        self.changed.set()

    async def stop(self) -> None:
        """Stop the feed and hand the lock over at once (a crash leaves it to the TTL)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.leading:
            await self.feed.stop()
            self.leading = False
        try:
            await self._release(keys=[self.key], args=[self.node_id])
        except (RedisError, OSError):
            pass
        await self._redis.aclose()

    def health(self) -> FeedHealth:
        inner = self.feed.health()
        details = {**inner.details, "leader": self.leading, "nodeId": self.node_id}
        return FeedHealth(inner.source, inner.connected, inner.last_event_at, inner.market_open,
                          inner.reconnects, details)
