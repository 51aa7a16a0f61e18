"""The Broker API feed through the real server to WebSocket clients and admin stats: alpaca-py's
BrokerClient reads the local Alpaca's SSE trade events, the server streams what the feed published."""

from __future__ import annotations

import uuid

import pytest

import ujson

from portfolio_ws.core.events import AccountUpdate
from portfolio_ws.feeds.alpaca_broker.feed import AlpacaBrokerFeed
from portfolio_ws.settings import AlpacaBrokerSettings, BrokerAccount
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, Collector, default_portfolios, health_until
from tests.behaviour.feeds.broker_env import BROKER_ENV
from tests.behaviour.feeds.test_alpaca_e2e import DeferredFeed, flatten

TOKEN = "admin-token-for-the-broker-e2e"


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_broker_fill_reaches_its_users_socket_and_no_one_elses(io_loop, make_server):
    deferred = DeferredFeed()
    server = await make_server(feed=deferred, auth__admin_token=TOKEN)
    alice, alice_cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    carol, _ = await server.user_session("carol")
    alpaca = AlpacaTestServer()
    default_portfolios(alpaca, USERS)
    await alpaca.start()
    ids = {"alice": alice.user_id, "bob": bob.user_id}
    accounts = [BrokerAccount(user=ids[n], account_id=alpaca.accounts[USERS[n][0]].id) for n in ids]
    # carol's account id is not one of the partner's: her REST fails (404), the others stream.
    accounts.append(BrokerAccount(user=carol.user_id, account_id=str(uuid.uuid4())))
    feed = AlpacaBrokerFeed(AlpacaBrokerSettings(accounts=tuple(accounts), rest_url=alpaca.rest_url), env=BROKER_ENV)
    events = Collector(server.bus)
    try:
        await deferred.attach(feed)
        for name in ids:
            await events.wait_for(lambda n=name: any(isinstance(e, AccountUpdate) and e.user_id == ids[n]
                                                     for e in events.events), f"{name}'s account")
        await alpaca.broker.connected()
        alice_ws = await server.connect(alice_cookie)
        await alice_ws.subscribe("positions", "orders", "account", "trades")
        snapshot = await alice_ws.expect("snapshot")
        assert [p["symbol"] for p in snapshot["data"]["positions"]] == ["AAPL"]
        bob_ws = await server.connect(bob_cookie)
        await bob_ws.subscribe("positions", "orders", "account", "trades")
        await bob_ws.expect("snapshot")

        fill = alpaca.trade(USERS["alice"][0], "AAPL", "buy", "5", "160.10")
        seen: dict[str, dict] = {}
        while not {"order_update", "trade_executed", "position_update", "account_update"} <= set(seen):
            message = await alice_ws.recv()
            assert message is not None and message["userId"] == ids["alice"], message
            for kind, data in flatten(message):
                if kind != "order_update" or data["status"] == "filled":
                    seen[kind] = data
        assert seen["trade_executed"]["tradeId"] == fill["execution_id"]
        assert (seen["trade_executed"]["quantity"], seen["trade_executed"]["price"]) == ("5", "160.10")
        assert (seen["position_update"]["quantity"], seen["position_update"]["entryPrice"]) == ("15", "153.37")
        assert seen["account_update"]["cash"] == "9199.50"
        await bob_ws.assert_nothing_pending()  # not one of alice's messages reached bob

        def carol_failed(health):
            return bool(health.details.get("accounts", {}).get(carol.user_id, {}).get("rest", {}).get("error"))

        await health_until(deferred, carol_failed, "carol's REST error")
        response = await server.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
        stats = ujson.loads(response.body)
        assert stats["status"] == "degraded" and stats["feed"]["connected"] is True
        assert stats["feed"]["source"] == "alpaca-broker"
        assert stats["feed"]["details"]["accounts"][carol.user_id]["rest"]["error"] == "HTTP 404"
        assert stats["feed"]["details"]["events"]["connected"] is True
        text = response.body.decode()
        assert BROKER_ENV["ALPACA_BROKER_SECRET"] not in text and BROKER_ENV["ALPACA_BROKER_KEY"] not in text
    finally:
        await deferred.stop()
        await alpaca.stop()
