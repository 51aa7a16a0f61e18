"""Feed leader election: one node runs the feed; when it dies, another takes over within the TTL."""

from __future__ import annotations

import asyncio
from typing import Any

from portfolio_ws.bus import EventBus
from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.feeds.leader import LeaderFeed
from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds import Feed
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


async def test_one_node_runs_the_feed_and_another_takes_over_when_it_dies(
        io_loop: Any, redis_server: RedisServer) -> None:
    inner_a, inner_b = CountingFeed(), CountingFeed()
    a = LeaderFeed(inner_a, redis_server.url, "a", TTL)
    b = LeaderFeed(inner_b, redis_server.url, "b", TTL)
    await a.start(InMemoryBus())
    await changed(a)
    await b.start(InMemoryBus())
    assert inner_a.running and a.health().details["leader"] is True
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
    a = LeaderFeed(inner_a, redis_server.url, "a", 30.0)  # a TTL far longer than the test
    b = LeaderFeed(inner_b, redis_server.url, "b", 0.3)
    await a.start(InMemoryBus())
    await changed(a)
    await b.start(InMemoryBus())
    await a.stop()
    await changed(b, timeout=5.0)
    assert inner_b.running and not inner_a.running
    await b.stop()
