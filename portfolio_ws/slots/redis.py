"""Connection slots in Redis (see ``slots/__init__.py``): cluster-wide limits with leases.

Keys (prefix ``cluster.key_prefix``): ``<p>slots:user:<user>`` and ``<p>slots:all``, sorted sets of
``<incarnation>:<n>:<node>:<user>`` members (the incarnation is random per process run) scored by
their lease's expiry (ms, Redis's own clock so node clocks may differ).
- One Lua script drops expired leases, checks both limits and takes the slot atomically.
- The node renews all of its leases every third of the TTL, adding back any that Redis lost
  (restarted empty): the limits hold again within one renewal period.
- A clean close releases a node's leases at once; a node starting under an id removes what an
  earlier run under that id left (a restarted node, or a ``--workers`` worker, keeps its id).
- A process that died leaves its leases for up to the TTL, and users reconnecting from it meanwhile
  were refused 1008, which tells clients to stop. Now, when a user is over the limit, the slots are
  checked against the processes connected to Redis (each names its connections
  ``pws-slots:<incarnation>``; the kernel closes a killed process's at once): slots of processes
  gone are removed and the slot is taken again. If that can't be told (``CLIENT LIST`` refused),
  the refusal is 1013 ``STALE_CONNECTION_SLOTS``, try again later, never 1008.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .. import constants as c
from ..constants import Close
from ..cluster.keys import KEY_PREFIX, key
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
# KEYS: user set, all set (pairs). ARGV: ttl ms, then one member per pair. Extends every lease
# held, adding back those Redis lost.
_RENEW = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  local user, all = KEYS[2 * i - 3], KEYS[2 * i - 2]
  redis.call('ZADD', user, expiry, ARGV[i])
  redis.call('ZADD', all, expiry, ARGV[i])
  redis.call('PEXPIRE', user, ARGV[1])
end
return 0
"""
# KEYS: all set. ARGV: user key prefix, node id, this run's incarnation. Removes the slots an
# earlier run of this node left; returns how many.
_FORGET_EARLIER_RUNS = """
local removed, prefix = 0, ARGV[2] .. ':'
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local inc, rest = string.match(m, '^([^:]*):[^:]*:(.*)$')
  if inc and inc ~= ARGV[3] and string.sub(rest, 1, #prefix) == prefix then
    redis.call('ZREM', KEYS[1], m)
    redis.call('ZREM', ARGV[1] .. string.sub(rest, #prefix + 1), m)
    removed = removed + 1
  end
end
return removed
"""
CLIENT_NAME = "pws-slots:"


class RedisSlots(ConnectionSlots):
    def __init__(self, url: str, node_id: str, per_user: int, total: int, ttl_seconds: float,
                 prefix: str = KEY_PREFIX) -> None:
        self.node_id = node_id
        self.per_user = per_user
        self.total = total
        self.ttl = ttl_seconds
        self.prefix = prefix
        self.incarnation = uuid.uuid4().hex[:12]
        self._redis: aioredis.Redis = request_client(url, client_name=CLIENT_NAME + self.incarnation)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._forget_earlier_runs = self._redis.register_script(_FORGET_EARLIER_RUNS)
        self.reclaimed = 0  # slots of dead processes removed to admit a socket
        self._numbers = itertools.count(1)
        self.held: dict[str, str] = {}  # slot member -> user id
        self._task: asyncio.Task[None] | None = None
        self.errors = 0

    def _user_key(self, user_id: str) -> str:
        return key(self.prefix, "slots", "user", user_id)

    @property
    def _all_key(self) -> str:
        return key(self.prefix, "slots", "all")

    async def _take(self, user_id: str, member: str) -> int:
        return int(await self._acquire(keys=[self._user_key(user_id), self._all_key],
                                       args=[member, int(self.ttl * 1000), self.per_user, self.total]))

    async def _slots_of_dead_processes(self, user_id: str) -> list[str] | None:
        """The user's slots held by processes no longer connected to Redis; None if it can't tell."""
        try:
            members: list[str] = await self._redis.zrange(  # type: ignore[assignment]
                self._user_key(user_id), 0, -1)
            clients = await self._redis.client_list()
        except (RedisError, OSError) as exc:
            log.warning("connection slots: cannot tell live processes (%s)", exc)
            return None
        live = {str(cl.get("name", ""))[len(CLIENT_NAME):] for cl in clients
                if str(cl.get("name", "")).startswith(CLIENT_NAME)} | {self.incarnation}
        return [m for m in members if m.split(":", 1)[0] not in live]

    async def acquire(self, user_id: str) -> tuple[str | None, Close | None]:
        member = f"{self.incarnation}:{next(self._numbers)}:{self.node_id}:{user_id}"
        try:
            verdict = await self._take(user_id, member)
            if verdict == 1:  # over the user's limit: are some of the slots a dead process's?
                dead = await self._slots_of_dead_processes(user_id)
                if dead is None:
                    return None, c.STALE_CONNECTION_SLOTS
                if dead:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        pipe.zrem(self._user_key(user_id), *dead)
                        pipe.zrem(self._all_key, *dead)
                        await pipe.execute()
                    self.reclaimed += len(dead)
                    log.info("connection slots: %d slot(s) of stopped processes freed for a new socket", len(dead))
                    verdict = await self._take(user_id, member)
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
        try:
            removed = await self._forget_earlier_runs(keys=[self._all_key],
                                                      args=[self._user_key(""), self.node_id, self.incarnation])
            if removed:
                log.info("connection slots: removed %d slot(s) an earlier run of node %s left", removed, self.node_id)
        except (RedisError, OSError) as exc:  # they run out with their leases
            log.warning("connection slots: cannot remove an earlier run's slots (%s)", exc)
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
