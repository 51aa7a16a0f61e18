"""What Redis keeps, and for how long (docs/scaling.md): a user's offset and portfolio state expire
``cluster.state_keep_days`` after the user's last event or load - refreshed by the publish script
with the update itself, and by a node loading the user - so Redis does not grow with every user
ever seen, while a node started late still serves the same snapshot. Real redis-server."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import redis.asyncio as aioredis

from portfolio_ws import constants as c
from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.settings import ClusterSettings
from tests.builders import account, position, trade
from tests.buses import Received
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

DAY = 86400


def kept(bus: RedisBus, user: str) -> tuple[str, str, str]:
    """The keys Redis keeps of a user: offset, portfolio state, recent trades."""
    return bus.seq_key(user), bus.state_key(user), bus.trades_key(user)


async def ttls(raw: aioredis.Redis, bus: RedisBus, user: str) -> list[int]:
    return [await raw.ttl(key) for key in kept(bus, user)]


@asynccontextmanager
async def following(redis_server: RedisServer, user: str,
                    keep_seconds: float) -> AsyncIterator[tuple[RedisBus, Received, aioredis.Redis]]:
    """A node's bus keeping state ``keep_seconds``, following ``user``; what it receives; and a plain
    Redis connection to look at (and age) the keys with. All closed after."""
    bus = RedisBus(redis_server.url, node_id="n1", state_keep_seconds=keep_seconds)
    await bus.start()
    await bus.follow(user)
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        yield bus, Received(bus), raw
    finally:
        await bus.close()
        await raw.aclose()


async def test_a_users_offset_and_state_expire_days_after_its_last_event_and_each_event_renews_them(
        io_loop: Any, redis_server: RedisServer) -> None:
    assert ClusterSettings().state_keep_days == 7.0  # the default: longer than any market closure
    async with following(redis_server, "u1", 7 * DAY) as (bus, received, raw):
        bus.publish(position("u1", "AAPL", qty="10"))
        bus.publish(trade("u1", trade_id="t1"))
        await received.until(2)
        assert all(7 * DAY - 60 < ttl <= 7 * DAY for ttl in await ttls(raw, bus, "u1"))
        for key in kept(bus, "u1"):
            await raw.expire(key, 30)  # as if the last event was almost 7 days ago
        bus.publish(account("u1"))
        await received.until(3)
        assert all(7 * DAY - 60 < ttl <= 7 * DAY for ttl in await ttls(raw, bus, "u1"))  # renewed
        # A node started later (an hour, a day) gets the same snapshot, and keeps it as long again.
        for key in kept(bus, "u1"):
            await raw.expire(key, 30)
        late = RedisBus(redis_server.url, node_id="late", state_keep_seconds=7 * DAY)
        await late.start()
        try:
            theirs, ours = await late.load_user("u1"), await bus.load_user("u1")
            assert theirs.seq == ours.seq == received.items[-1][1]
            assert theirs.state.snapshot(c.CHANNELS) == ours.state.snapshot(c.CHANNELS)
            assert [p["symbol"] for p in theirs.state.snapshot(c.CHANNELS)["positions"]] == ["AAPL"]
            assert all(7 * DAY - 60 < ttl <= 7 * DAY for ttl in await ttls(raw, bus, "u1"))  # a load renews
        finally:
            await late.close()


async def test_zero_keeps_a_users_state_until_deleted(io_loop: Any, redis_server: RedisServer) -> None:
    async with following(redis_server, "u2", 0) as (bus, received, raw):
        bus.publish(trade("u2", trade_id="t1"))
        await received.until(1)
        assert await ttls(raw, bus, "u2") == [-1, -1, -1]
        await raw.expire(bus.state_key("u2"), 30)  # kept by a deployment that had a limit before
        bus.publish(trade("u2", trade_id="t2"))
        await received.until(2)
        assert await ttls(raw, bus, "u2") == [-1, -1, -1]


async def test_an_expired_user_starts_again_above_its_old_offsets(io_loop: Any, redis_server: RedisServer) -> None:
    """State gone (expired) for a user: its next event is numbered above every old offset, so a
    client resuming from one gets a flagged snapshot, never an offset it has seen."""
    async with following(redis_server, "u3", DAY) as (bus, received, raw):
        bus.publish(trade("u3", trade_id="t1"))
        await received.until(1)
        old = received.items[-1][1]
        assert old is not None
        await raw.delete(*kept(bus, "u3"))  # what expiry does
        assert (await bus.load_user("u3")).seq == 0
        bus.publish(trade("u3", trade_id="t2"))
        await received.until(2)
        new = received.items[-1][1]
        assert new is not None and new > old
        assert (await bus.load_user("u3")).seq == new
