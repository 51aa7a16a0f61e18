"""Feed leader election: one node runs the feed; when it dies, another takes over within the TTL."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from portfolio_ws.bus import EventBus
from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.feeds.leader import LeaderFeed, RedisFeedState
from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds import Feed, FeedState
from tests.poll import until
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

TTL = 0.6


class CountingFeed(Feed):
    source = "fake"

    def __init__(self) -> None:
        self.running = False

    async def start(self, bus: EventBus) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    def health(self) -> FeedHealth:
        return FeedHealth("fake", self.running)


async def changed(feed: LeaderFeed, timeout: float = 5 * TTL) -> None:
    await asyncio.wait_for(feed.changed.wait(), timeout)
    feed.changed.clear()


async def leader_then_follower(redis: RedisServer, inner_a: Feed, inner_b: Feed, ttl: float,
                               ttl_b: float | None = None) -> tuple[LeaderFeed, LeaderFeed]:
    """Node a takes the feed lock (its feed started), then node b starts beside it."""
    a = LeaderFeed(inner_a, redis.url, "a", ttl)
    b = LeaderFeed(inner_b, redis.url, "b", ttl if ttl_b is None else ttl_b)
    await a.start(InMemoryBus())
    await changed(a)
    await b.start(InMemoryBus())
    return a, b


async def after_round(feed: LeaderFeed, condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Until ``condition`` holds after one of the feed's rounds with the lock (``LeaderFeed.when``): a
    follower reads the shared health and copies the records in its rounds, on its own timer."""
    try:
        await asyncio.wait_for(feed.when(condition), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what}: not within {timeout:g} s") from None


async def until_shared(follower: LeaderFeed) -> None:
    await after_round(follower, lambda: follower.health().details.get("leaderNode") is not None,
                      f"{follower.node_id} reading the leader's shared health")


async def test_one_node_runs_the_feed_and_another_takes_over_when_it_dies(
        io_loop: Any, redis_server: RedisServer) -> None:
    inner_a, inner_b = CountingFeed(), CountingFeed()
    a, b = await leader_then_follower(redis_server, inner_a, inner_b, TTL)
    assert inner_a.running and a.health().details["leader"] is True
    await until_shared(b)
    shared = b.health()  # the follower reports the leader's feed, not its own idle copy
    assert shared.connected and shared.details == {"leader": False, "nodeId": "b", "leaderNode": "a"}
    # Node a crashes: its renewals stop, its lock is not released.
    a.abandon()
    loop = asyncio.get_running_loop()
    died = loop.time()
    await changed(b)
    assert inner_b.running and b.leading
    assert loop.time() - died <= TTL + TTL / 3 + 0.5  # within the TTL (plus one renewal period)
    a.leading = False  # the crashed node's feed is gone with it
    await a.stop()
    await b.stop()
    assert not inner_b.running


async def test_a_clean_stop_hands_over_at_once(io_loop: Any, redis_server: RedisServer) -> None:
    inner_a, inner_b = CountingFeed(), CountingFeed()
    # a: a TTL far longer than the test
    a, b = await leader_then_follower(redis_server, inner_a, inner_b, 30.0, ttl_b=0.3)
    await a.stop()
    await changed(b, timeout=5.0)
    assert inner_b.running and not inner_a.running
    await b.stop()


async def test_redis_restarted_empty_leaves_the_feed_with_its_leader(io_loop: Any, redis_server: RedisServer) -> None:
    """The lock vanishes with Redis's data: the follower must not take it (its feed would start
    the market over); the leader takes it back at its next renewal."""
    ttl = 1.2
    inner_a, inner_b = CountingFeed(), CountingFeed()
    a, b = await leader_then_follower(redis_server, inner_a, inner_b, ttl)
    await until_shared(b)  # b has seen a's lease
    redis_server.restart()
    try:
        await asyncio.wait_for(b.changed.wait(), 2 * ttl)  # a lease and more: b must stay a follower
        raise AssertionError("the follower took the lock Redis lost")
    except asyncio.TimeoutError:
        pass
    assert a.leading and inner_a.running and not b.leading
    await a.stop()
    await b.stop()


class KeepingFeed(CountingFeed):
    """Starts from the record it is handed, and records where it is (as the simulator keeps its market)."""

    def __init__(self, record: bytes) -> None:
        super().__init__()
        self.record = record
        self.handed: list[bytes | None] = []

    def keep_state(self, state: FeedState, interval: float) -> None:
        self.state = state

    async def start(self, bus: EventBus) -> None:
        self.handed.append(await self.state.get("market"))
        await self.state.put("market", self.record)
        await super().start(bus)


@pytest.mark.slow
async def test_after_redis_restarted_empty_the_next_leader_continues_from_the_mirrored_state(
        io_loop: Any, redis_server: RedisServer) -> None:
    """Redis loses the feed's records with the lock; the leader dies before writing them again: the
    node taking over continues from its own copy (not a new day), and writes it back."""
    ttl = 0.6
    inner_a, inner_b = KeepingFeed(b"market day-1 at event 5000"), KeepingFeed(b"market day-1 at event 6000")
    a, b = await leader_then_follower(redis_server, inner_a, inner_b, ttl)
    await until_shared(b)
    await after_round(b, lambda: b._state.copies.get("market", (None,))[0] == b"market day-1 at event 5000",
                      "b's copy of the leader's record", 3 * ttl)
    redis_server.restart()
    a.abandon()  # the leader dies before its next renewal
    a.leading = False
    await changed(b, timeout=5 * ttl)
    assert b.leading and inner_b.handed == [b"market day-1 at event 5000"]  # not None: a new market
    await a.stop()
    await b.stop()


async def test_a_leader_writes_its_records_back_when_redis_comes_back_empty(
        io_loop: Any, redis_server: RedisServer) -> None:
    ttl = 0.6
    inner = KeepingFeed(b"market day-1 at event 5000")
    a = LeaderFeed(inner, redis_server.url, "a", ttl)
    await a.start(InMemoryBus())
    await changed(a)
    redis_server.restart()
    reader = RedisFeedState(redis_server.url)
    try:  # back within a renewal, unasked; Redis is asked from outside (tests/poll.py)
        found = await until(lambda: reader.get("market"), 5 * ttl, "the leader's record written back to Redis")
        assert found == b"market day-1 at event 5000" and inner.handed == [None]
    finally:
        await reader.close()
        await a.stop()



async def _commands(raw: Any, *names: str) -> int:
    """How many of these commands Redis has run so far (INFO commandstats)."""
    stats = await raw.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)


async def test_a_follower_reads_only_the_records_whose_stamp_changed(io_loop: Any, redis_server: RedisServer) -> None:
    """A follower polls the records every renewal: while they stand still a poll reads no record;
    a changed record is read on the next poll; one written again unchanged is re-read once a
    RESTAMP_SECONDS (so the follower's copy stays as young as the record in Redis)."""
    import redis.asyncio as aioredis

    from portfolio_ws.feeds.leader import RESTAMP_SECONDS

    now = [1000.0]
    leader = RedisFeedState(redis_server.url, clock=lambda: now[0])
    follower = RedisFeedState(redis_server.url, clock=lambda: now[0])
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        await leader.put("market", b"market m1")
        await leader.put("checkpoint-0", b"checkpoint at 10")
        await follower.mirror()
        assert {n: c[0] for n, c in follower.copies.items()} == {"market": b"market m1", "checkpoint-0": b"checkpoint at 10"}
        reads = await _commands(raw, "get", "smembers")
        await follower.mirror()  # nothing changed: the stamps only
        assert await _commands(raw, "get", "smembers") == reads
        await leader.put("market", b"market m1")  # rewritten unchanged (every save does)
        await leader.put("checkpoint-0", b"checkpoint at 20")
        await follower.mirror()
        assert follower.copies["checkpoint-0"][0] == b"checkpoint at 20"
        assert await _commands(raw, "get") == reads + 1  # the changed record only
        now[0] += RESTAMP_SECONDS
        await leader.put("market", b"market m1")
        await follower.mirror()
        assert await _commands(raw, "get") == reads + 2
        assert follower.copies["market"][0] == b"market m1" and follower.copies["market"][1] == pytest.approx(now[0], abs=0.01)
    finally:
        await raw.aclose()
        await leader.close()
        await follower.close()
