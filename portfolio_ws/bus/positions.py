"""The Redis bus's source positions (``EventBus.positions`` / ``restore_positions``): each user's last
``<epoch>:<n>`` published by a feed, read back by a new feed leader (feeds/leader.py) and restored
after Redis lost them. The publish script (bus/script.py) is what sets and checks them."""

from __future__ import annotations

import redis.asyncio as aioredis

from .keys import BusKeys
from .script import POSITION_KEEP_SECONDS

CHUNK = 500  # users a round trip (GETs, not MGET: each user's key is in its own slot)


class RedisPositions(BusKeys):
    _redis: aioredis.Redis

    async def positions(self, user_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(user_ids), CHUNK):
            chunk = user_ids[start:start + CHUNK]
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in chunk:
                    pipe.get(self.position_key(user_id))
                values = await pipe.execute()
            found.update((user, value) for user, value in zip(chunk, values) if value is not None)
        return found

    async def restore_positions(self, positions: dict[str, str]) -> None:
        users = list(positions)
        for start in range(0, len(users), CHUNK):
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in users[start:start + CHUNK]:
                    pipe.set(self.position_key(user_id), positions[user_id], nx=True, ex=POSITION_KEEP_SECONDS)
                await pipe.execute()
