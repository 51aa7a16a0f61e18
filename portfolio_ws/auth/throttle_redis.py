"""``LoginThrottle`` in Redis: the login limits of ``throttle`` shared by every worker and node, so
``serve --workers N`` or a cluster gives an attacker no extra attempts.

Keys (``prefix`` default ``pws:``), sorted sets of attempt id -> start time, each expiring with the
window: ``<p>login:pair:<h>``, ``<p>login:addr:<h>``, ``<p>login:user:<h>``, ``<h>`` the SHA-256 of
the username (lowercase) and/or address, so Redis holds no usernames. Checking and counting an
attempt is one Lua script: two workers can't both take the last attempt.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..cluster.keys import KEY_PREFIX, key
from ..cluster.redis import request_client
from .throttle import (_USER_COUNT_CAP, Attempt, Blocked, LoginPolicy, LoginThrottle, MemoryLoginThrottle, Scope,
                       user_key)

# KEYS: pair, address, user. ARGV: now, window, pair limit, address limit, attempt id, user cap.
# Returns {0, username attempts before this one} or {1|2 (pair|address), oldest attempt's time}.
_BEGIN = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
for i = 1, 3 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window) end
for i = 1, 2 do
  if redis.call('ZCARD', KEYS[i]) >= limits[i] then
    return {i, redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2]}
  end
end
local before = redis.call('ZCARD', KEYS[3])
local ttl = math.ceil(window * 1000)
for i = 1, 3 do
  redis.call('ZADD', KEYS[i], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
local cap = tonumber(ARGV[6])
if before >= cap then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, before - cap) end
return {0, before}
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


class RedisLoginThrottle:
    def __init__(self, url: str, policy: LoginPolicy, prefix: str = KEY_PREFIX) -> None:
        self.policy = policy
        self.prefix = prefix
        self._redis = request_client(url)
        self._begin = self._redis.register_script(_BEGIN)

    def _keys(self, user: str, address: str) -> list[str]:
        p = self.prefix
        return [key(p, "login", "pair", _digest(user, address)), key(p, "login", "addr", _digest(address)),
                key(p, "login", "user", _digest(user))]

    async def begin(self, username: str, address: str, now: float) -> Attempt | Blocked:
        user = user_key(username)
        attempt = Attempt(user, address, now)
        policy = self.policy
        result: Any = await self._begin(keys=self._keys(user, address),
                                        args=[repr(now), repr(policy.window), policy.pair_limit,
                                              policy.address_limit, attempt.id, _USER_COUNT_CAP])
        kind, value = int(result[0]), result[1]
        if kind:
            scope: Scope = "user+address" if kind == 1 else "address"
            return Blocked(scope, policy.retry_after(float(value), now))
        return Attempt(user, address, now, policy.delay(int(value)), attempt.id)

    async def refund(self, attempt: Attempt) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in self._keys(attempt.user_key, attempt.address):
                pipe.zrem(key, attempt.id)
            await pipe.execute()

    async def succeeded(self, attempt: Attempt) -> None:
        pair, address, user = self._keys(attempt.user_key, attempt.address)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(pair, user)
            pipe.zrem(address, attempt.id)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


def login_throttle(policy: LoginPolicy, redis_url: str, prefix: str) -> LoginThrottle:
    """Redis when the deployment has one (shared by every process), else this process's memory."""
    if redis_url:
        return RedisLoginThrottle(redis_url, policy, prefix)
    return MemoryLoginThrottle(policy)
