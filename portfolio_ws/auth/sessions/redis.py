"""``SessionStore`` in Redis: a login on one node is valid on every node of the cluster.

Keys (``prefix`` default ``pws:``), only the SHA-256 of each id (``sessions.session_digest``):
- ``<p>session:<digest>``: hash ``user_id``, ``created_at``, ``last_seen_at`` (epoch seconds);
- ``<p>sessions-of:<user>``: set of the user's digests (``delete_for_user``);
- ``<p>session-expiry``: sorted set digest -> expiry instant (``purge_expired``).
Expiry follows the ``now`` passed in, as the contract says; each session key also gets a Redis TTL a
little past its expiry, only so that a store nobody purges cannot grow without bound.
Multi-key changes run as Lua scripts, so two nodes never see half a session.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ...cluster.redis import request_client
from ...settings import AuthSettings
from . import (
    Session,
    SessionLifetime,
    SessionStore,
    new_session_id,
    plausible_session_id,
    session_digest,
)

TTL_MARGIN_SECONDS = 60  # Redis TTL beyond a session's expiry: a backstop, never the rule

# KEYS: session, expiry zset. ARGV: digest, user set prefix. Returns {user_id, created_at, last_seen_at} or {}.
_DELETE = """
local fields = redis.call('HMGET', KEYS[1], 'user_id', 'created_at', 'last_seen_at')
if not fields[1] then redis.call('ZREM', KEYS[2], ARGV[1]) return {} end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. fields[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return fields
"""

# KEYS: user set, expiry zset. ARGV: session key prefix. Returns how many sessions ended.
_DELETE_FOR_USER = """
local ended = 0
for _, digest in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', ARGV[1] .. digest)
  redis.call('ZREM', KEYS[2], digest)
end
redis.call('DEL', KEYS[1])
return ended
"""

# KEYS: expiry zset. ARGV: now, session key prefix, user set prefix. Returns how many ended.
_PURGE = """
local ended = 0
for _, digest in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local user = redis.call('HGET', ARGV[2] .. digest, 'user_id')
  if user then
    redis.call('DEL', ARGV[2] .. digest)
    redis.call('SREM', ARGV[3] .. user, digest)
    ended = ended + 1
  end
  redis.call('ZREM', KEYS[1], digest)
end
return ended
"""


class RedisSessionStore(SessionStore):
    def __init__(self, url: str, lifetime: SessionLifetime, prefix: str = "pws:") -> None:
        self.lifetime = lifetime
        self._redis: aioredis.Redis = request_client(url)
        self._session_prefix = f"{prefix}session:"
        self._user_prefix = f"{prefix}sessions-of:"
        self._expiry = f"{prefix}session-expiry"
        self._delete = self._redis.register_script(_DELETE)
        self._delete_for_user = self._redis.register_script(_DELETE_FOR_USER)
        self._purge = self._redis.register_script(_PURGE)

    @classmethod
    def from_settings(cls, url: str, settings: AuthSettings, prefix: str = "pws:") -> RedisSessionStore:
        return cls(url, SessionLifetime.from_settings(settings), prefix)

    def _ttl(self, created_at: float, last_seen_at: float, now: float) -> int:
        return max(1, int(self.lifetime.expires_at(created_at, last_seen_at) - now) + TTL_MARGIN_SECONDS)

    async def create(self, user_id: str, now: float) -> str:
        session_id = new_session_id()
        digest = session_digest(session_id)
        key = self._session_prefix + digest
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user_id": user_id, "created_at": repr(now), "last_seen_at": repr(now)})
            pipe.expire(key, self._ttl(now, now, now))
            pipe.sadd(self._user_prefix + user_id, digest)
            pipe.zadd(self._expiry, {digest: self.lifetime.expires_at(now, now)})
            await pipe.execute()
        return session_id

    async def lookup(self, session_id: str, now: float) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        digest = session_digest(session_id)
        key = self._session_prefix + digest
        fields: dict[str, Any] = await self._redis.hgetall(key)  # type: ignore[misc,assignment]
        if not fields:
            return None
        user_id, created_at, last_seen_at = fields["user_id"], float(fields["created_at"]), float(fields["last_seen_at"])
        if self.lifetime.is_expired(created_at, last_seen_at, now):
            await self._delete(keys=[key, self._expiry], args=[digest, self._user_prefix])
            return None
        if self.lifetime.needs_touch(last_seen_at, now):
            last_seen_at = now
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, "last_seen_at", repr(now))
                pipe.expire(key, self._ttl(created_at, now, now))
                pipe.zadd(self._expiry, {digest: self.lifetime.expires_at(created_at, now)})
                await pipe.execute()
        return Session(session_id, user_id, created_at, last_seen_at)

    async def delete(self, session_id: str) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        digest = session_digest(session_id)
        fields = await self._delete(keys=[self._session_prefix + digest, self._expiry],
                                    args=[digest, self._user_prefix])
        if not fields:
            return None
        user_id, created_at, last_seen_at = fields
        return Session(session_id, user_id, float(created_at), float(last_seen_at))

    async def delete_for_user(self, user_id: str) -> int:
        ended = await self._delete_for_user(keys=[self._user_prefix + user_id, self._expiry],
                                            args=[self._session_prefix])
        return int(ended)

    async def purge_expired(self, now: float) -> int:
        ended = await self._purge(keys=[self._expiry], args=[repr(now), self._session_prefix, self._user_prefix])
        return int(ended)

    async def close(self) -> None:
        await self._redis.aclose()
