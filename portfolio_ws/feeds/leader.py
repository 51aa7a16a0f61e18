"""Exactly one node runs the feed: a Redis lock with a TTL, renewed by its holder.

``LeaderFeed`` wraps the configured feed (simulator or Alpaca). Every node runs one; the node that
holds ``<prefix>feed-leader`` runs the real feed, the others wait. The holder renews the lock every
third of ``ttl``; if it dies, the lock lapses within ``ttl`` and a waiting node takes it the moment it
does (they poll at the lock's own remaining time). A holder that cannot renew (Redis unreachable, or
the lock taken) stops its feed, so two feeds never run longer than one renewal interval together.

The feed continues where the last leader stopped: it keeps its records in ``RedisFeedState``
(``<prefix>feed:<name>``, expiring ``STATE_KEEP_SECONDS`` after their last write, so a market no node
ran for that long is over). Each record that changed gets a new stamp in ``<prefix>feed-stamps``, so
a follower copying the records reads only those whose stamp it has not seen. The holder also shares its feed's health (``<prefix>feed-health``,
expiring with the lock): every other node reports the feed as the leader sees it, not as its own
idle copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

import ujson

from ..bus import EventBus
from ..bus.watched import Conditions
from ..cluster.keys import KEY_PREFIX, key
from ..cluster.redis import client as redis_client
from ..core.health import FeedHealth
from . import Feed, FeedState

log = logging.getLogger(__name__)

STATE_KEEP_SECONDS = 600.0
# A record written again unchanged is stamped anew at most this often: followers then re-read it,
# which keeps their copy's age (what ``_young`` trusts) within this of the record's in Redis.
RESTAMP_SECONDS = 60.0

# KEYS: lock, released marker. ARGV: node id, ttl ms, "peek" to only look unless the holder let it
# go cleanly (the marker). Takes a free lock or renews our own: 1 if we renewed it, 2 if we took it
# free, else minus the ms the holder's lease has left (0: free, when peeking).
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if ARGV[3] == 'peek' and holder ~= ARGV[1] and redis.call('EXISTS', KEYS[2]) == 0 then
  if holder == false then return 0 end
  return -math.max(1, redis.call('PTTL', KEYS[1]))
end
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  if holder == false then return 2 end
  return 1
end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then left = 1 end
return -left
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisFeedState(FeedState):
    """The records in Redis, and a copy of each on this node (``mirror``): what it last wrote, or on a
    follower what it last read there. A record Redis lost (restarted empty) comes back from the copy.
    A write that changes a record (or is the first in ``RESTAMP_SECONDS``) sets a new random stamp for
    it in ``stamps_key``; ``mirror`` reads the stamps first and then only the records whose stamp
    changed, so a follower's poll costs one small read while the records stand still."""

    def __init__(self, url: str, prefix: str = KEY_PREFIX, keep_seconds: float = STATE_KEEP_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.prefix = prefix
        self.keep_ms = int(keep_seconds * 1000)
        self.index_key = key(prefix, "feed-records")
        self.stamps_key = key(prefix, "feed-stamps")
        self._clock = clock
        self.copies: dict[str, tuple[bytes, float]] = {}  # name -> (record, when it was written: clock)
        self._stamped: dict[str, float] = {}  # name -> when this node last stamped it (clock)
        self._seen: dict[str, str] = {}  # name -> the stamp of the record as this node last read it
        # Bytes (records are the feed's own encoding); a socket timeout so a paused Redis can't hold the feed.
        self._redis: aioredis.Redis = redis_client(url, text=False, socket_timeout=10.0)

    async def get(self, name: str) -> bytes | None:
        value = await self._redis.get(self.key(name))
        if isinstance(value, bytes):
            return value
        copy = self._young(name)
        if copy is not None:  # Redis lost it: ours, written back for whoever runs the feed next
            log.warning("feed state: %s is gone from Redis; using this node's copy", name)
            await self._store(name, *copy, only_missing=True)
            return copy[0]
        return None

    async def put(self, name: str, value: bytes) -> None:
        now = self._clock()
        copy = self.copies.get(name)
        stamp = copy is None or copy[0] != value or now - self._stamped.get(name, float("-inf")) >= RESTAMP_SECONDS
        self.copies[name] = (value, now)
        await self._store(name, value, now, stamp=stamp)

    async def mirror(self) -> None:
        """Copy from Redis every record whose stamp changed since this node last read it (a
        follower, on each poll of the lock); every record when none is stamped (an older leader)."""
        stamps = {_text(n): _text(v) for n, v in (await self._redis.hgetall(self.stamps_key)).items()}
        if stamps:
            names = sorted(n for n, stamp in stamps.items() if self._seen.get(n) != stamp)
        else:
            names = sorted(_text(n) for n in await self._redis.smembers(self.index_key))
        if not names:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(self.key(name))
                pipe.pttl(self.key(name))
            found = await pipe.execute()
        now = self._clock()
        for name, value, left in zip(names, found[::2], found[1::2]):
            if name in stamps:  # read at or after that stamp: a later write brings a later one
                self._seen[name] = stamps[name]
            if not isinstance(value, bytes):
                continue
            written = now - (self.keep_ms - int(left)) / 1000 if int(left) > 0 else now
            if name not in self.copies or self.copies[name][0] != value or name in stamps:
                self.copies[name] = (value, written)

    async def restore(self) -> None:
        """Write back every young copy Redis lacks (it came back empty under a running leader)."""
        for name in list(self.copies):
            copy = self._young(name)
            if copy is not None:
                await self._store(name, *copy, only_missing=True)

    def _young(self, name: str) -> tuple[bytes, float] | None:
        copy = self.copies.get(name)
        return copy if copy is not None and self._clock() - copy[1] < self.keep_ms / 1000 else None

    async def _store(self, name: str, value: bytes, written: float, only_missing: bool = False,
                     stamp: bool = True) -> None:
        left = max(1, self.keep_ms - int((self._clock() - written) * 1000))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self.key(name), value, px=left, nx=only_missing)
            pipe.sadd(self.index_key, name)
            pipe.pexpire(self.index_key, self.keep_ms)
            if stamp:  # random, not a counter: one Redis restarted empty counts again from 1
                pipe.hset(self.stamps_key, name, uuid.uuid4().hex[:16])
            pipe.pexpire(self.stamps_key, self.keep_ms)
            await pipe.execute()
        if stamp:
            self._stamped[name] = self._clock()

    def key(self, name: str) -> str:
        return key(self.prefix, "feed", name)

    async def close(self) -> None:
        await self._redis.aclose()


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name


def _health_record(health: FeedHealth, node_id: str) -> str:
    return ujson.dumps({"node": node_id, **dataclasses.asdict(health)}, default=str)


def _health_from(record: str) -> tuple[str, FeedHealth] | None:
    try:
        d = ujson.loads(record)
        node = str(d.pop("node"))
        return node, FeedHealth(**d)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


class LeaderFeed(Feed):
    def __init__(self, feed: Feed, url: str, node_id: str, ttl_seconds: float, prefix: str = KEY_PREFIX) -> None:
        self.feed = feed
        self.source = feed.source
        self.node_id = node_id
        self.ttl = ttl_seconds
        self.key = key(prefix, "feed-leader")
        self.released_key = key(prefix, "feed-leader-released")
        self.health_key = key(prefix, "feed-health")
        self._redis: aioredis.Redis = redis_client(url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._state = RedisFeedState(url, prefix)
        feed.keep_state(self._state, ttl_seconds / 3)
        self._task: asyncio.Task[None] | None = None
        self._bus: EventBus | None = None
        self.leading = False
        # The leader's feed health as last read (node, health); None when no node shares one.
        self._shared: tuple[str, FeedHealth] | None = None
        self.changed = asyncio.Event()  # set on every change of ``leading`` (tests await it)
        self._conditions = Conditions()  # what ``when`` awaits, re-checked after each round with the lock
        self._stopping = asyncio.Event()  # checked by the loop too: redis-py can swallow a cancel
        # When the lease we last saw another node hold runs out (loop time). A lock gone before
        # then was lost by Redis (restarted empty), not let go by a dead holder: the holder takes
        # it back at its next renewal, and a follower taking it instead would start the market over.
        self._held_elsewhere_until = 0.0
        self._renewed_at = 0.0  # loop time of our last successful take or renewal

    async def start(self, bus: EventBus) -> None:
        self._bus = bus
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            wait = self.ttl / 3  # the renewal period: a timer, not a wait for an outcome
            now = asyncio.get_running_loop().time()
            peek = not self.leading and now < self._held_elsewhere_until
            try:
                verdict = int(await self._acquire(keys=[self.key, self.released_key], args=[
                    self.node_id, int(self.ttl * 1000), "peek" if peek else "take"]))
            except (RedisError, OSError) as exc:
                log.warning("feed lock: cannot reach Redis (%s)", exc)
                # Our lease outlives a failed renewal: keep the feed while it surely holds (no other
                # node can take the lock before it lapses), stop before it may have.
                verdict = 1 if self.leading and now - self._renewed_at < self.ttl * 2 / 3 else 0
                wait = self.ttl / 6  # and try again sooner
            else:
                if verdict >= 1:
                    self._renewed_at = now
            held = verdict >= 1
            if verdict < 0:  # another node holds it: ask again the moment its lease runs out
                self._held_elsewhere_until = now + -verdict / 1000
                wait = min(wait, -verdict / 1000 + 0.01)
            elif peek:  # gone early: leave it to its holder until its lease would have run out
                wait = min(wait, self._held_elsewhere_until - now + 0.01)
            if held != self.leading:
                await self._become(held)
            elif held and verdict == 2:  # our lock was gone: Redis lost its data, put the records back
                await self._keep_records(self._state.restore)
            try:
                if held:
                    await self._redis.set(self.health_key, _health_record(self.feed.health(), self.node_id),
                                          px=int(self.ttl * 1000))
                else:
                    record = await self._redis.get(self.health_key)
                    self._shared = _health_from(record) if isinstance(record, str) else None
                    await self._keep_records(self._state.mirror)
            except (RedisError, OSError):
                self._shared = None
            self._conditions.changed()
            try:  # sleep until the next renewal, or until stopped
                await asyncio.wait_for(self._stopping.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _keep_records(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except (RedisError, OSError, ValueError) as exc:
            log.warning("feed state: cannot copy the records (%s)", exc)

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

    def when(self, condition: Callable[[], bool]) -> "asyncio.Future[None]":
        """A future resolved once ``condition()`` holds: at once, or after the round with the lock
        (a renewal, or a follower's read of the shared health and the records) that makes it hold."""
        return self._conditions.when(condition)

    def abandon(self) -> None:
        """Stop renewing without releasing or stopping the feed: what a crash leaves (tests)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()

    # False when this node stops because its id is another live node's (cluster/stats.py): the lock
    # under that id is the live node's, not this one's to hand over.
    hand_over = True

    async def stop(self) -> None:
        """Stop the feed and hand the lock over at once (a crash leaves it to the TTL)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=self.ttl + 2)  # bounded, whatever redis-py does
            self._task = None
        if self.leading:
            await self.feed.stop()
            self.leading = False
        try:
            if self.hand_over:
                await self._release(keys=[self.key, self.released_key], args=[self.node_id, int(self.ttl * 1000)])
        except (RedisError, OSError):
            pass
        await self._redis.aclose()
        await self._state.close()

    def health(self) -> FeedHealth:
        """The leader's own feed's health; on any other node, what the leader last shared (not
        connected when no node shares one: the lock is free, or Redis is out of reach)."""
        if self.leading:
            inner = self.feed.health()
            return dataclasses.replace(inner, details={**inner.details, "leader": True, "nodeId": self.node_id,
                                                       "leaderNode": self.node_id})
        ours = {"leader": False, "nodeId": self.node_id}
        if self._shared is None:
            return FeedHealth(self.source, False, details={
                **ours, "leaderNode": None, "failure": "no node is running the feed (lock free or Redis unreachable)"})
        node, shared = self._shared
        return dataclasses.replace(shared, details={**shared.details, **ours, "leaderNode": node})
