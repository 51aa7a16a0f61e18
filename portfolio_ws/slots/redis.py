"""Connection slots in Redis (see ``slots.py``): cluster-wide limits with leases.

Keys (prefix ``cluster.key_prefix``): ``<p>slots:user:<user>`` and ``<p>slots:all``, sorted sets of
``<node>:<n>`` members scored by their lease's expiry (ms, Redis's own clock so node clocks may
differ). One Lua script drops expired leases, checks both limits and takes the slot atomically; the
node renews all of its leases every third of the TTL; a clean close releases them at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .. import constants as c
from ..constants import Close
from ..cluster.redis import request_client
from . import ConnectionSlots

log = logging.getLogger(__name__)

# KEYS: user set, all set. ARGV: member, ttl ms, per-user limit, total limit.
# Returns 0 taken, 1 over the per-user limit, 2 over the total.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""
# KEYS: user set, all set (pairs). ARGV: ttl ms, then one member per pair. Extends leases still held.
_RENEW = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  local user, all = KEYS[2 * i - 3], KEYS[2 * i - 2]
  redis.call('ZADD', user, 'XX', expiry, ARGV[i])
  redis.call('ZADD', all, 'XX', expiry, ARGV[i])
  redis.call('PEXPIRE', user, ARGV[1])
end
return 0
"""


class RedisSlots(ConnectionSlots):
    def __init__(self, url: str, node_id: str, per_user: int, total: int, ttl_seconds: float,
                 prefix: str = "pws:") -> None:
        self.node_id = node_id
        self.per_user = per_user
        self.total = total
        self.ttl = ttl_seconds
        self.prefix = prefix
        self._redis: aioredis.Redis = request_client(url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._numbers = itertools.count(1)
        self.held: dict[str, str] = {}  # slot member -> user id
        self._task: asyncio.Task[None] | None = None
        self.errors = 0

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}slots:user:{user_id}"

    @property
    def _all_key(self) -> str:
        return f"{self.prefix}slots:all"

    async def acquire(self, user_id: str) -> tuple[str | None, Close | None]:
        member = f"{self.node_id}:{next(self._numbers)}"
        try:
            verdict = await self._acquire(keys=[self._user_key(user_id), self._all_key],
                                          args=[member, int(self.ttl * 1000), self.per_user, self.total])
        except (RedisError, OSError) as exc:
            self.errors += 1
            log.warning("connection slots: Redis unreachable (%s); admitting on this node's limits", exc)
            return None, None
        if verdict == 1:
            return None, c.user_limit_close(self.per_user)
        if verdict == 2:
            return None, c.SERVER_CAPACITY
        self.held[member] = user_id
        return member, None

    async def release(self, slot: str) -> None:
        user_id = self.held.pop(slot, None)
        if user_id is None:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self._user_key(user_id), slot)
                pipe.zrem(self._all_key, slot)
                await pipe.execute()
        except (RedisError, OSError) as exc:  # the lease runs out by itself within the TTL
            self.errors += 1
            log.warning("connection slots: release failed (%s); the lease will expire", exc)

    async def renew(self) -> None:
        """Extend every lease this node holds (one script call)."""
        if not self.held:
            return
        keys: list[str] = []
        for member, user_id in self.held.items():
            keys += [self._user_key(user_id), self._all_key]
        await self._renew(keys=keys, args=[int(self.ttl * 1000), *self.held])

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)  # the renewal period, not a wait for anything
            try:
                await self.renew()
            except (RedisError, OSError) as exc:
                self.errors += 1
                log.warning("connection slots: renewal failed (%s); retrying", exc)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._renew_loop())

    def abandon(self) -> None:
        """Stop renewing without releasing: what a crashed node leaves behind (tests)."""
        if self._task is not None:
            self._task.cancel()
        self.held.clear()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for slot in list(self.held):
            await self.release(slot)
        await self._redis.aclose()
