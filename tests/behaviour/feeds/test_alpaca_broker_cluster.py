"""The Broker API feed behind the cluster's feed lock (feeds/leader.py) on a real Redis: the node that
takes the feed over resumes the SSE trade events after the last one its predecessor read, so a trade
made while no node ran the feed still reaches the bus as ``trade_executed``."""

from __future__ import annotations

import asyncio
from typing import Any

from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.core.events import TradeExecuted
from portfolio_ws.feeds.alpaca_broker.feed import AlpacaBrokerFeed
from portfolio_ws.feeds.leader import LeaderFeed
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, Collector, default_portfolios
from tests.behaviour.feeds.broker_env import BROKER_ENV, broker_settings
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

TTL = 0.6


def _trades(events: Collector) -> list[Any]:
    return [e for e in events.events if isinstance(e, TradeExecuted)]


async def test_the_next_leader_resumes_the_events_after_its_predecessor(io_loop, redis_server: RedisServer):
    alpaca = AlpacaTestServer()
    default_portfolios(alpaca, USERS)
    await alpaca.start()
    bus = InMemoryBus()
    events = Collector(bus)
    key = USERS["alice"][0]
    a = LeaderFeed(AlpacaBrokerFeed(broker_settings(alpaca, ["alice"]), env=BROKER_ENV), redis_server.url, "a", TTL)
    b = LeaderFeed(AlpacaBrokerFeed(broker_settings(alpaca, ["alice"]), env=BROKER_ENV), redis_server.url, "b", TTL)
    try:
        await a.start(bus)
        await asyncio.wait_for(a.changed.wait(), 5 * TTL)
        await alpaca.broker.connected()
        alpaca.trade(key, "AAPL", "buy", "1", "160")
        await events.wait_for(lambda: len(_trades(events)) == 1, "the first trade")
        await a.stop()  # a clean handover: the cursor is written, the lock released
        fill = alpaca.trade(key, "AAPL", "buy", "2", "161")  # no node runs the feed now
        await b.start(bus)
        await asyncio.wait_for(b.changed.wait(), 5 * TTL)
        await events.wait_for(lambda: any(t.trade_id == fill["execution_id"] for t in _trades(events)),
                              "the trade made between the leaders")
        # The next leader resumes at the kept cursor, which Alpaca replays (since_id is inclusive):
        # the first trade must not reach the bus a second time.
        trades = [t.trade_id for t in _trades(events)]
        assert trades == [trades[0], fill["execution_id"]]
        assert alpaca.broker.since_ids[-1] is not None
    finally:
        await b.stop()
        await alpaca.stop()
