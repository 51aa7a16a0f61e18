"""The Alpaca feed through the real server to WebSocket clients and admin stats: alpaca-py talks to
the local Alpaca, the server (tests/harness.py) streams what the feed published. The shared setup:
tests/behaviour/feeds/e2e.py."""

from __future__ import annotations

import pytest
import ujson

from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds.alpaca.feed import AlpacaFeed
from portfolio_ws.settings import AlpacaSettings
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, health_until, mapped_accounts
from tests.behaviour.feeds.e2e import feed_served, fill_messages

TOKEN = "admin-token-for-the-alpaca-e2e"


def trading_feed(alpaca: AlpacaTestServer, ids: dict[str, str]) -> AlpacaFeed:
    """Each user mapped to their local Alpaca account by environment variables."""
    accounts, env = mapped_accounts(ids)
    return AlpacaFeed(AlpacaSettings(accounts=accounts, trading_stream_url=alpaca.trading_url,
                                     data_stream_url=alpaca.data_url, rest_url=alpaca.rest_url), env=env)


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_fill_reaches_the_websocket_client_as_four_messages(io_loop, make_server):
    async with feed_served(make_server, trading_feed) as served:
        alpaca, ids = served.alpaca, served.ids
        await alpaca.trading_listening(USERS["alice"][0])
        await served.accounts_arrived("bob", "alice")
        alice, snapshot = await served.watching("alice")
        assert [p["symbol"] for p in snapshot["data"]["positions"]] == ["AAPL"]
        assert snapshot["data"]["account"]["cash"] == "10000.00"
        bob, snapshot = await served.watching("bob")
        assert snapshot["userId"] == ids["bob"]

        fill = alpaca.trade(USERS["alice"][0], "AAPL", "buy", "5", "160.10")
        seen = await fill_messages(alice, ids["alice"])
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


async def test_refused_keys_show_in_admin_stats_while_others_stream(io_loop, make_server):
    async with feed_served(make_server, trading_feed, refuse="bob", auth__admin_token=TOKEN) as served:
        server, alpaca, ids = served.server, served.alpaca, served.ids
        await served.accounts_arrived("alice")

        def bob_failed(health: FeedHealth) -> bool:
            bob = health.details.get("accounts", {}).get(ids["bob"], {})
            return bool(bob.get("rest", {}).get("error") and bob.get("trading", {}).get("error")
                        and health.details.get("data", {}).get("connected"))

        health = await health_until(served.deferred, bob_failed, "bob's errors, the price stream up")
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
        alice = await server.connect(served.cookies["alice"])
        await alice.subscribe("trades")
        await alice.expect("snapshot")
        alpaca.trade(USERS["alice"][0], "AAPL", "sell", "1", "170")
        trade = await alice.expect("trade_executed")
        assert trade["data"]["pnl"] == "20.00"  # 1 * (170 - 150)
