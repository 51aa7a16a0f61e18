"""The Broker API feed through the real server to WebSocket clients and admin stats: alpaca-py's
BrokerClient reads the local Alpaca's SSE trade events, the server streams what the feed published.
The shared setup: tests/behaviour/feeds/e2e.py."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

import ujson

from portfolio_ws.feeds.alpaca_broker.feed import AlpacaBrokerFeed
from portfolio_ws.settings import BrokerAccount
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, health_until
from tests.behaviour.feeds.broker_env import BROKER_ENV, broker_settings
from tests.behaviour.feeds.e2e import feed_served, fill_messages

TOKEN = "admin-token-for-the-broker-e2e"


def broker_feed(alpaca: AlpacaTestServer, ids: dict[str, str]) -> AlpacaBrokerFeed:
    """alice and bob mapped to their accounts; carol's account id is not one of the partner's."""
    settings = broker_settings(alpaca, ["alice", "bob"], ids)
    stranger = BrokerAccount(user=ids["carol"], account_id=str(uuid.uuid4()))
    return AlpacaBrokerFeed(dataclasses.replace(settings, accounts=(*settings.accounts, stranger)), env=BROKER_ENV)


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_broker_fill_reaches_its_users_socket_and_no_one_elses(io_loop, make_server):
    async with feed_served(make_server, broker_feed, users=("alice", "bob", "carol"),
                           auth__admin_token=TOKEN) as served:
        server, alpaca, ids = served.server, served.alpaca, served.ids
        await served.accounts_arrived("alice", "bob")
        await alpaca.broker.connected()
        alice, snapshot = await served.watching("alice")
        assert [p["symbol"] for p in snapshot["data"]["positions"]] == ["AAPL"]
        bob, _ = await served.watching("bob")

        fill = alpaca.trade(USERS["alice"][0], "AAPL", "buy", "5", "160.10")
        seen = await fill_messages(alice, ids["alice"])
        assert seen["trade_executed"]["tradeId"] == fill["execution_id"]
        assert (seen["trade_executed"]["quantity"], seen["trade_executed"]["price"]) == ("5", "160.10")
        assert (seen["position_update"]["quantity"], seen["position_update"]["entryPrice"]) == ("15", "153.37")
        assert seen["account_update"]["cash"] == "9199.50"
        await bob.assert_nothing_pending()  # not one of alice's messages reached bob

        # carol's REST fails (404), the others stream.
        def carol_failed(health):
            return bool(health.details.get("accounts", {}).get(ids["carol"], {}).get("rest", {}).get("error"))

        await health_until(served.deferred, carol_failed, "carol's REST error")
        response = await server.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
        stats = ujson.loads(response.body)
        assert stats["status"] == "degraded" and stats["feed"]["connected"] is True
        assert stats["feed"]["source"] == "alpaca-broker"
        assert stats["feed"]["details"]["accounts"][ids["carol"]]["rest"]["error"] == "HTTP 404"
        assert stats["feed"]["details"]["events"]["connected"] is True
        text = response.body.decode()
        assert BROKER_ENV["ALPACA_BROKER_SECRET"] not in text and BROKER_ENV["ALPACA_BROKER_KEY"] not in text
