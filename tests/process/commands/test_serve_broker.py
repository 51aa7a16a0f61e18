"""The Broker API feed with the real thing: a ``portfolio-ws serve --feed alpaca-broker`` process,
alpaca-py's BrokerClient reading the local Alpaca's SSE trade events, one user mapped in the config
and one linked by ``portfolio-ws accounts link USER --broker-account ID`` while it serves. Each
fill reaches its own user's socket, and the broker key is in neither the log nor the admin stats.
The shared setup: alpaca_serve.py."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.alpaca_broker_server import BROKER_KEY, BROKER_SECRET
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS
from tests.process.commands.alpaca_serve import cli, nothing_of, serving, trade_on

pytestmark = pytest.mark.slow  # real processes (serve and the CLI)


def account_id(alpaca: AlpacaTestServer, name: str) -> str:
    return alpaca.accounts[USERS[name][0]].id


async def test_serve_streams_mapped_and_linked_broker_accounts(io_loop, tmp_path: Path):
    def env(alpaca: AlpacaTestServer) -> dict[str, str]:
        return {"ALPACA_BROKER_KEY": BROKER_KEY, "ALPACA_BROKER_SECRET": BROKER_SECRET,
                "PORTFOLIO_WS_ALPACA_BROKER_REST_URL": alpaca.rest_url}

    def config(alpaca: AlpacaTestServer, ids: dict[str, str]) -> str:
        return f"alpaca_broker:\n  accounts:\n    - {{user: {ids['bob']}, account_id: {account_id(alpaca, 'bob')}}}\n"

    async with serving(tmp_path, "alpaca-broker", env, config) as running:
        alpaca, serve, ids = running.alpaca, running.serve, running.ids
        alice, bob = running.sockets["alice"], running.sockets["bob"]
        await alpaca.broker.connected()
        await alpaca.rest_called(USERS["bob"][0], "account", 1)

        out = await cli({}, "link", "alice", "--broker-account", account_id(alpaca, "alice"),
                        "--database", serve.database)
        assert "Linked alice" in out
        await alpaca.rest_called(USERS["alice"][0], "account", 1)  # no restart: the running feed took it
        alpaca.trade(USERS["alice"][0], "TSLA", "buy", "3", "250.5")
        alpaca.trade(USERS["bob"][0], "NVDA", "sell", "1", "521")
        trade = await trade_on(alice, "TSLA")
        assert (Decimal(trade["quantity"]), Decimal(trade["price"]), trade["side"]) == (3, Decimal("250.5"), "buy")
        assert (await trade_on(bob, "NVDA"))["side"] == "sell"
        await nothing_of(bob, "TSLA")  # what bob's socket got up to now: nothing of alice's

        feed, body = await running.feed_stats()
        assert feed["source"] == "alpaca-broker" and feed["connected"] is True
        assert feed["details"]["accounts"][ids["alice"]]["linked"] is True
        assert feed["details"]["accounts"][ids["bob"]]["accountId"] == account_id(alpaca, "bob")
        assert BROKER_SECRET.encode() not in body and BROKER_KEY.encode() not in body
    log = serve.log.read_text()
    assert "broker" in log and BROKER_SECRET not in log and BROKER_KEY not in log
