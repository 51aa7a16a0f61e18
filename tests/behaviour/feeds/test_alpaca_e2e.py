"""The Alpaca feed through the real server to WebSocket clients and admin stats: alpaca-py talks to
the local Alpaca, the server (tests/harness.py) streams what the feed published."""

from __future__ import annotations

import pytest

from typing import Any

import ujson

from portfolio_ws.bus import EventBus
from portfolio_ws.core.events import AccountUpdate
from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds import Feed
from portfolio_ws.feeds.alpaca.feed import AlpacaFeed
from portfolio_ws.settings import AlpacaAccount, AlpacaSettings
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, Collector, default_portfolios, health_until

TOKEN = "admin-token-for-the-alpaca-e2e"
BATCH_KEYS = {"positions": "position_update", "orders": "order_update", "account": "account_update",
              "trades": "trade_executed"}


class DeferredFeed(Feed):
    """Started with the server; the Alpaca feed is attached once the test's users (ids) exist."""

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


async def start_alpaca(server: Any, deferred: DeferredFeed, refuse: str | None = None) -> tuple[Any, ...]:
    """Users alice and bob on the server, mapped to the local Alpaca's accounts; feed attached."""
    alice, alice_cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    alpaca = AlpacaTestServer()
    default_portfolios(alpaca, USERS)
    if refuse:
        alpaca.refuse(USERS[refuse][0])
    await alpaca.start()
    ids = {"alice": alice.user_id, "bob": bob.user_id}
    env = {}
    for name in ids:
        env[f"{name.upper()}_KEY"], env[f"{name.upper()}_SECRET"] = USERS[name]
    feed = AlpacaFeed(AlpacaSettings(
        accounts=tuple(AlpacaAccount(user=ids[n], key_env=f"{n.upper()}_KEY", secret_env=f"{n.upper()}_SECRET")
                       for n in ids),
        trading_stream_url=alpaca.trading_url, data_stream_url=alpaca.data_url, rest_url=alpaca.rest_url,
    ), env=env)
    events = Collector(server.bus)
    await deferred.attach(feed)
    return alpaca, ids, events, alice_cookie, bob_cookie


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_fill_reaches_the_websocket_client_as_four_messages(io_loop, make_server):
    deferred = DeferredFeed()
    server = await make_server(feed=deferred)
    alpaca, ids, events, alice_cookie, bob_cookie = await start_alpaca(server, deferred)
    try:
        await alpaca.trading_listening(USERS["alice"][0])
        await events.wait_for(lambda: any(isinstance(e, AccountUpdate) and e.user_id == ids["bob"]
                                          for e in events.events), "bob's account")
        await events.wait_for(lambda: any(isinstance(e, AccountUpdate) and e.user_id == ids["alice"]
                                          for e in events.events), "alice's account")
        alice = await server.connect(alice_cookie)
        await alice.subscribe("positions", "orders", "account", "trades")
        snapshot = await alice.expect("snapshot")
        assert [p["symbol"] for p in snapshot["data"]["positions"]] == ["AAPL"]
        assert snapshot["data"]["account"]["cash"] == "10000.00"
        bob = await server.connect(bob_cookie)
        await bob.subscribe("positions", "orders", "account", "trades")
        assert (await bob.expect("snapshot"))["userId"] == ids["bob"]

        fill = alpaca.trade(USERS["alice"][0], "AAPL", "buy", "5", "160.10")
        seen: dict[str, Any] = {}
        while not {"order_update", "trade_executed", "position_update", "account_update"} <= set(seen):
            message = await alice.recv()
            assert message is not None and message["userId"] == ids["alice"], message
            for kind, data in flatten(message):
                if kind != "order_update" or data["status"] == "filled":
                    seen[kind] = data
        assert seen["order_update"] == {**seen["order_update"], "status": "filled", "qty": "5", "filledQty": "5",
                                        "filledAvgPrice": "160.10", "symbol": "AAPL", "side": "buy",
                                        "brokerOrderId": fill["order"]["id"]}
        assert seen["trade_executed"] == {**seen["trade_executed"], "tradeId": fill["execution_id"],
                                          "quantity": "5", "price": "160.10", "pnl": None, "side": "buy"}
        assert seen["position_update"] == {**seen["position_update"], "symbol": "AAPL", "quantity": "15",
                                           "currentPrice": "160.10", "entryPrice": "153.37",
                                           "unrealizedPnl": "101.00", "unrealizedPnlPercent": "4.39",
                                           "marketValue": "2401.50", "side": "long"}
        assert seen["account_update"] == {**seen["account_update"], "cash": "9199.50", "equity": "11601.00",
                                          "portfolioValue": "11601.00"}
        await bob.assert_nothing_pending()  # not one of alice's messages reached bob
    finally:
        await deferred.stop()  # before its Alpaca goes away; the service's stop repeats it harmlessly
        await alpaca.stop()


async def test_refused_keys_show_in_admin_stats_while_others_stream(io_loop, make_server):
    deferred = DeferredFeed()
    server = await make_server(feed=deferred, auth__admin_token=TOKEN)
    alpaca, ids, events, alice_cookie, _ = await start_alpaca(server, deferred, refuse="bob")
    try:
        await events.wait_for(lambda: any(isinstance(e, AccountUpdate) and e.user_id == ids["alice"]
                                          for e in events.events), "alice's account")
        def bob_failed(health: FeedHealth) -> bool:
            bob = health.details.get("accounts", {}).get(ids["bob"], {})
            return bool(bob.get("rest", {}).get("error") and bob.get("trading", {}).get("error")
                        and health.details.get("data", {}).get("connected"))

        health = await health_until(deferred, bob_failed, "bob's errors, the price stream up")
        response = await server.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
        stats = ujson.loads(response.body)
        feed = stats["feed"]
        # One account of two refused: degraded (the other streams), not offline.
        assert feed["source"] == "alpaca" and feed["connected"] is True and stats["status"] == "degraded"
        assert feed["details"]["impaired"] == f"1 of 2 accounts not connected: {ids['bob']}"
        bob = feed["details"]["accounts"][ids["bob"]]
        assert bob["rest"]["error"] == "unauthorized (HTTP 401)" and not bob["trading"]["connected"]
        assert feed["details"]["accounts"][ids["alice"]]["trading"]["connected"] is True
        assert health.details["accounts"][ids["bob"]]["trading"]["error"]
        alice = await server.connect(alice_cookie)
        await alice.subscribe("trades")
        await alice.expect("snapshot")
        alpaca.trade(USERS["alice"][0], "AAPL", "sell", "1", "170")
        trade = await alice.expect("trade_executed")
        assert trade["data"]["pnl"] == "20.00"  # 1 * (170 - 150)
    finally:
        await deferred.stop()  # before its Alpaca goes away; the service's stop repeats it harmlessly
        await alpaca.stop()
