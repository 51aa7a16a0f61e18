"""Shared pieces of the Broker API feed tests: the local Alpaca (its broker part) and an
``AlpacaBrokerFeed`` on a bus, with awaitable conditions over what reached the bus."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.core.events import AccountUpdate
from portfolio_ws.feeds.alpaca_broker.feed import AlpacaBrokerFeed
from portfolio_ws.settings import AlpacaBrokerSettings, BrokerAccount
from tests.alpaca_broker_server import BROKER_KEY, BROKER_SECRET
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, Collector, default_portfolios

BROKER_ENV = {"ALPACA_BROKER_KEY": BROKER_KEY, "ALPACA_BROKER_SECRET": BROKER_SECRET}


@dataclass
class BrokerEnv:
    server: AlpacaTestServer
    feed: AlpacaBrokerFeed
    bus: InMemoryBus
    events: Collector

    def key(self, user: str) -> str:
        return USERS[user][0]

    def account_id(self, user: str) -> str:
        return self.server.accounts[self.key(user)].id

    async def ready(self, users: list[str]) -> None:
        """Until the events stream is connected and each user's first account update arrived."""
        await self.server.broker.connected()
        for user in users:
            await self.events.wait_for(
                lambda u=user: any(e.user_id == u and isinstance(e, AccountUpdate) for e in self.events.events),
                f"first account update of {user}")


def broker_settings(server: AlpacaTestServer, users: list[str], ids: dict[str, str] | None = None,
                    **settings: Any) -> AlpacaBrokerSettings:
    """``users`` (names in ``USERS``; ``ids``: their user ids, if not the names) mapped to their accounts."""
    # Written in capitals: Alpaca's events carry them in lower case, and a UUID is a UUID either way.
    accounts = tuple(BrokerAccount(user=(ids or {}).get(u, u), account_id=server.accounts[USERS[u][0]].id.upper())
                     for u in users)
    return AlpacaBrokerSettings(accounts=accounts, rest_url=server.rest_url, **settings)


@asynccontextmanager
async def broker_env(users: list[str], env: dict[str, str] | None = None, linked: Any = None,
                     **settings: Any) -> AsyncIterator[BrokerEnv]:
    """The local Alpaca with the default portfolios; ``users`` mapped to their broker accounts;
    ``linked``: the feed's linked-accounts watcher."""
    server = AlpacaTestServer()
    default_portfolios(server, USERS)
    await server.start()
    feed = AlpacaBrokerFeed(broker_settings(server, users, **settings), env=BROKER_ENV if env is None else env,
                            linked=linked)
    bus = InMemoryBus()
    context = BrokerEnv(server, feed, bus, Collector(bus))
    try:
        await feed.start(bus)
        yield context
    finally:
        await feed.stop()
        await server.stop()
