"""Shared pieces of the Alpaca feed tests: the local Alpaca, the feed on a bus, and awaitable
conditions over what reached the bus (never fixed sleeps)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.core.events import AccountUpdate, Event, TradeExecuted
from portfolio_ws.feeds import Feed
from portfolio_ws.feeds.alpaca.feed import AlpacaFeed
from portfolio_ws.settings import AlpacaAccount, AlpacaSettings
from tests.alpaca_server import AlpacaTestServer, Conditions

USERS = {  # user -> (key, secret)
    "alice": ("AKALICE0000000000001", "alice-secret-do-not-log"),
    "bob": ("AKBOB00000000000002", "bob-secret-do-not-log"),
    "carol": ("AKCAROL000000000003", "carol-secret-do-not-log"),
}


class Collector:
    """Every event published on the bus, in order, with awaitable conditions over them."""

    def __init__(self, bus: InMemoryBus) -> None:
        self.events: list[Event] = []
        self.conditions = Conditions()
        bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self.conditions.changed()

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int, user: str | None = None, kind: type | None = None) -> list[Any]:
        return [e for e in self.events[mark:]
                if (user is None or e.user_id == user) and (kind is None or isinstance(e, kind))]

    async def wait_for(self, predicate: Callable[[], Any], what: str = "", timeout: float = 10.0) -> Any:
        return await self.conditions.wait_for(predicate, timeout, what)

    async def first(self, mark: int, match: Callable[[Any], bool], what: str = "", timeout: float = 10.0) -> Any:
        """The first event after ``mark`` matching ``match``, once it has arrived."""
        def found() -> Any:
            return next((e for e in self.events[mark:] if match(e)), None)

        return await self.wait_for(found, what, timeout)


@dataclass
class AlpacaEnv:
    server: AlpacaTestServer
    feed: AlpacaFeed
    bus: InMemoryBus
    events: Collector
    users: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(USERS))

    def key(self, user: str) -> str:
        return self.users[user][0]

    async def ready(self, users: list[str] | None = None, symbols: set[str] | None = None) -> None:
        """Until every given user's trading stream listens and their first account update arrived,
        and the data stream is subscribed to ``symbols``."""
        for user in users if users is not None else list(self.users):
            await self.server.trading_listening(self.key(user))
            await self.events.wait_for(
                lambda u=user: any(e.user_id == u and isinstance(e, AccountUpdate) for e in self.events.events),
                f"first account update of {user}",
            )
        if symbols:
            await self.server.data_subscribed(symbols)

    async def health_until(self, predicate: Callable[[Any], bool], what: str, timeout: float = 10.0) -> Any:
        return await health_until(self.feed, predicate, what, timeout)

    def assert_isolation(self) -> None:
        """No event of one user's account ever carries another user's id."""
        owner_of_key = {key: user for user, (key, _) in self.users.items()}
        for event in self.events.events:
            assert event.user_id in self.users, event
            if isinstance(event, TradeExecuted) and event.trade_id in self.server.execution_owner:
                assert owner_of_key[self.server.execution_owner[event.trade_id]] == event.user_id, event
            broker_id = getattr(event, "broker_order_id", None)
            if broker_id in self.server.order_owner:
                assert owner_of_key[self.server.order_owner[broker_id]] == event.user_id, event


async def health_until(feed: Feed, predicate: Callable[[Any], bool], what: str, timeout: float = 10.0) -> Any:
    """Until ``predicate(feed.health())``, looked at again every 20 ms: a condition, not a fixed
    wait. Polled because health is computed when asked, from the SDK's streams (run by alpaca-py's
    own loops), REST answers, the linked-accounts watcher and the market clock: no one change
    among them could resolve a future, and a hook in each would put test plumbing in the feed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        health = feed.health()
        if predicate(health):
            return health
        if loop.time() > deadline:
            raise asyncio.TimeoutError(f"health never showed {what}: {health}")
        await asyncio.sleep(0.02)


def default_portfolios(server: AlpacaTestServer, users: dict[str, tuple[str, str]]) -> None:
    """alice long 10 AAPL, bob short 5 AAPL and long 3 NVDA, carol long 20 MSFT."""
    alice = server.add_account(*users["alice"], cash="10000")
    alice.set_position("AAPL", qty="10", avg_entry="150", price="155")
    bob = server.add_account(*users["bob"], cash="25000", last_equity="24000")
    bob.set_position("AAPL", qty="-5", avg_entry="180", price="155")
    bob.set_position("NVDA", qty="3", avg_entry="500", price="520.5")
    carol = server.add_account(*users["carol"], cash="5000")
    carol.set_position("MSFT", qty="20", avg_entry="300", price="310")


def mapped_accounts(ids: dict[str, str]) -> tuple[tuple[AlpacaAccount, ...], dict[str, str]]:
    """Each named user (``USERS``; ``ids``: name -> user id) mapped to their account by the
    environment variables ``<NAME>_KEY`` and ``<NAME>_SECRET``: the accounts, and that environment."""
    accounts = tuple(AlpacaAccount(user=ids[n], key_env=f"{n.upper()}_KEY", secret_env=f"{n.upper()}_SECRET")
                     for n in ids)
    env = {}
    for n in ids:
        env[f"{n.upper()}_KEY"], env[f"{n.upper()}_SECRET"] = USERS[n]
    return accounts, env


@asynccontextmanager
async def alpaca_env(
    users: list[str] | None = None,
    setup: Callable[[AlpacaTestServer, dict[str, tuple[str, str]]], None] = default_portfolios,
    env_overrides: dict[str, str] | None = None,
    before_start: Callable[[AlpacaTestServer], None] | None = None,
    clock: Callable[[], float] | None = None,
    linked: Any = None,
    **settings: Any,
) -> AsyncIterator[AlpacaEnv]:
    """A local Alpaca with ``setup``'s accounts and a started ``AlpacaFeed`` on an ``InMemoryBus``."""
    server = AlpacaTestServer()
    setup(server, USERS)
    await server.start()
    names = users if users is not None else list(USERS)
    accounts, env = mapped_accounts({u: u for u in names})
    env.update(env_overrides or {})
    options: dict[str, Any] = {"account_update_interval_seconds": 0.0, "sync_interval_seconds": 60.0}
    options.update(settings)
    feed = AlpacaFeed(
        AlpacaSettings(accounts=accounts, trading_stream_url=server.trading_url,
                       data_stream_url=server.data_url, rest_url=server.rest_url, **options),
        env=env,
        linked=linked,
        **({"clock": clock} if clock is not None else {}),
    )
    bus = InMemoryBus()
    context = AlpacaEnv(server, feed, bus, Collector(bus), {u: USERS[u] for u in names})
    if before_start is not None:
        before_start(server)
    try:
        await feed.start(bus)
        yield context
        context.assert_isolation()
    finally:
        await feed.stop()
        await server.stop()
