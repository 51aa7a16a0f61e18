"""Shared pieces of the feed end-to-end tests (test_alpaca_e2e.py for the trading API feed,
test_alpaca_broker_e2e.py for the Broker API feed): a real server whose feed is attached once the
test's users exist, the local Alpaca with the default portfolios, and the four messages a fill
sends its user's socket."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from portfolio_ws.bus import EventBus
from portfolio_ws.core.events import AccountUpdate
from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds import Feed
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, Collector, default_portfolios
from tests.harness import Client

CHANNELS = ("positions", "orders", "account", "trades")
BATCH_KEYS = {"positions": "position_update", "orders": "order_update", "account": "account_update",
              "trades": "trade_executed"}


class DeferredFeed(Feed):
    """Started with the server; the feed under test is attached once the test's users (ids) exist."""

    source = "alpaca"

    def __init__(self) -> None:
        self.inner: Feed | None = None
        self.bus: EventBus | None = None

    async def start(self, bus: EventBus) -> None:
        self.bus = bus

    async def attach(self, feed: Feed) -> None:
        assert self.bus is not None
        self.inner = feed
        await feed.start(self.bus)

    async def stop(self) -> None:
        if self.inner is not None:
            await self.inner.stop()

    def health(self) -> FeedHealth:
        return self.inner.health() if self.inner else FeedHealth(source="alpaca", connected=False)


def flatten(message: dict[str, Any]) -> list[tuple[str, Any]]:
    """(type, data) of each event a data message carries, batches unpacked."""
    if message["type"] != "batch":
        return [(message["type"], message["data"])]
    items: list[tuple[str, Any]] = []
    for key, kind in BATCH_KEYS.items():
        value = message["data"].get(key)
        for item in value if isinstance(value, list) else [value] if value else []:
            items.append((kind, item))
    return items


@dataclass
class Served:
    """The server, its deferred feed, the local Alpaca and the test's users on both."""

    server: Any
    deferred: DeferredFeed
    alpaca: AlpacaTestServer
    ids: dict[str, str]  # name -> the user's id on the server
    cookies: dict[str, str]  # name -> a session cookie
    events: Collector  # everything the feed published

    async def accounts_arrived(self, *names: str) -> None:
        """Until the feed has published each named user's first account update."""
        for name in names:
            await self.events.wait_for(lambda n=name: any(isinstance(e, AccountUpdate) and e.user_id == self.ids[n]
                                                          for e in self.events.events), f"{name}'s account")

    async def watching(self, name: str) -> tuple[Client, dict[str, Any]]:
        """The user's socket subscribed to every channel, and the snapshot it got."""
        client = await self.server.connect(self.cookies[name])
        await client.subscribe(*CHANNELS)
        return client, await client.expect("snapshot")


@asynccontextmanager
async def feed_served(make_server: Any, feed: Callable[[AlpacaTestServer, dict[str, str]], Feed],
                      users: tuple[str, ...] = ("alice", "bob"), refuse: str | None = None,
                      **server_options: Any) -> AsyncIterator[Served]:
    """A server (``make_server(**server_options)``) with ``users``, the local Alpaca with the default
    portfolios (``refuse``: that user's key answered 401), and ``feed(alpaca, ids)`` attached. The
    feed is stopped before its Alpaca goes away (the service's stop repeats it harmlessly)."""
    deferred = DeferredFeed()
    server = await make_server(feed=deferred, **server_options)
    ids, cookies = {}, {}
    for name in users:
        user, cookies[name] = await server.user_session(name)
        ids[name] = user.user_id
    alpaca = AlpacaTestServer()
    default_portfolios(alpaca, USERS)
    if refuse:
        alpaca.refuse(USERS[refuse][0])
    await alpaca.start()
    served = Served(server, deferred, alpaca, ids, cookies, Collector(server.bus))
    try:
        await deferred.attach(feed(alpaca, ids))
        yield served
    finally:
        await deferred.stop()
        await alpaca.stop()


async def fill_messages(client: Client, user_id: str) -> dict[str, Any]:
    """What a fill sends the user's socket, by kind, once all four kinds arrived (the order update:
    its filled one). Every message on the way must be the user's own."""
    seen: dict[str, Any] = {}
    while not set(BATCH_KEYS.values()) <= set(seen):
        message = await client.recv()
        assert message is not None and message["userId"] == user_id, message
        for kind, data in flatten(message):
            if kind != "order_update" or data["status"] == "filled":
                seen[kind] = data
    return seen
