"""Cluster mode: the ids of published items each user has had, in Redis, so a retry sent to any
node delivers nothing twice (``core.seen`` is the one-process version).

One sorted set per user, ``<prefix>published:{<user>}`` (the user's hash slot, like their other
keys), scored by the Redis clock: the last ``SEEN_PER_USER`` ids, the set expiring a day after its
last write. Claiming checks and adds in one script, so two nodes given the same id at once can't
both take it. A batch's claims go in one pipeline, in item order (the first of two equal ids wins).

``CLAIM_LUA`` is the one home of the claim: this module's script runs it alone (HTTP publish), the
bus's publish script (bus/script.py) runs it together with the publish itself (Redis Streams
ingest: a node killed between the two can't leave an id taken but its event unpublished).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from ..core.seen import SEEN_PER_USER
from .keys import KEY_PREFIX, user_key
from .redis import request_client

KEEP_MS = 24 * 3600 * 1000

# Lua with ``seen``: the user's set, ``id``, ``window``, ``keep``: when the id was taken before, the
# script returns ``taken`` (its caller's "duplicate"); else the id is added, trimmed to the window.
CLAIM_LUA = """
if redis.call('ZSCORE', seen, id) then return taken end
local now = redis.call('TIME')
redis.call('ZADD', seen, tonumber(now[1]) * 1000000 + tonumber(now[2]), id)
redis.call('ZREMRANGEBYRANK', seen, 0, -(tonumber(window) + 1))
redis.call('PEXPIRE', seen, keep)
"""

# KEYS: the user's set. ARGV: id, window, keep ms. 1 when taken now, 0 when it was already.
_CLAIM = """
local seen, id, window, keep, taken = KEYS[1], ARGV[1], ARGV[2], ARGV[3], 0
""" + CLAIM_LUA + """
return 1
"""


def seen_key(prefix: str, user_id: str) -> str:
    """The user's set of published ids (its hash slot: ``{<user>}``)."""
    return user_key(prefix, "published", user_id)


class RedisSeenIds:
    def __init__(self, url: str, prefix: str = KEY_PREFIX, per_user: int = SEEN_PER_USER) -> None:
        self.prefix, self.per_user = prefix, per_user
        self._redis: aioredis.Redis = request_client(url)
        self._claim = self._redis.register_script(_CLAIM)

    def key(self, user_id: str) -> str:
        return seen_key(self.prefix, user_id)

    async def claim(self, items: list[tuple[str, str]]) -> list[bool]:
        """For each (user, id), in order: True when it is taken now, False when it was before."""
        if not items:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, item_id in items:
                await self._claim(keys=[self.key(user_id)], args=[item_id, self.per_user, KEEP_MS], client=pipe)
            results = await pipe.execute()
        return [int(r) == 1 for r in results]

    async def close(self) -> None:
        await self._redis.aclose()
