"""The Broker API feed with the real thing: a ``portfolio-ws serve --feed alpaca-broker`` process,
alpaca-py's BrokerClient reading the local Alpaca's SSE trade events, one user mapped in the config
and one linked by ``portfolio-ws accounts link USER --broker-account ID`` while it serves. Each
fill reaches its own user's socket, and the broker key is in neither the log nor the admin stats."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import ujson

from tests.alpaca_broker_server import BROKER_KEY, BROKER_SECRET
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, default_portfolios
from tests.process.commands.test_serve_linked import cli, trade_on
from tests.procs import ServeProcess, add_users

pytestmark = pytest.mark.slow  # real processes (serve and the CLI)
TOKEN = "admin-token-of-the-broker-feed-test"


async def test_serve_streams_mapped_and_linked_broker_accounts(io_loop, tmp_path: Path):
    alpaca = AlpacaTestServer()
    default_portfolios(alpaca, USERS)
    await alpaca.start()
    alice_id, bob_id = (alpaca.accounts[USERS[n][0]].id for n in ("alice", "bob"))
    serve = ServeProcess(tmp_path, "--feed", "alpaca-broker", env={
        "ALPACA_BROKER_KEY": BROKER_KEY, "ALPACA_BROKER_SECRET": BROKER_SECRET,
        "PORTFOLIO_WS_ALPACA_BROKER_REST_URL": alpaca.rest_url, "PORTFOLIO_WS_ACCOUNTS_POLL_SECONDS": "0.2",
        "PORTFOLIO_WS_LOGGING_LEVEL": "DEBUG", "PORTFOLIO_WS_AUTH_ADMIN_TOKEN": TOKEN})
    ids = add_users(serve.database, ["alice", "bob"])
    (tmp_path / "config.yaml").write_text(
        f"alpaca_broker:\n  accounts:\n    - {{user: {ids['bob']}, account_id: {bob_id}}}\n")
    await serve.start()
    try:
        alice = await serve.connect((await serve.login("alice"))[0])
        bob = await serve.connect((await serve.login("bob"))[0])
        for client in (alice, bob):
            await client.subscribe("positions", "orders", "account", "trades")
        await alpaca.broker.connected()
        await alpaca.rest_called(USERS["bob"][0], "account", 1)

        out = await cli({}, "link", "alice", "--broker-account", alice_id, "--database", serve.database)
        assert "Linked alice" in out
        await alpaca.rest_called(USERS["alice"][0], "account", 1)  # no restart: the running feed took it
        alpaca.trade(USERS["alice"][0], "TSLA", "buy", "3", "250.5")
        alpaca.trade(USERS["bob"][0], "NVDA", "sell", "1", "521")
        trade = await trade_on(alice, "TSLA")
        assert (Decimal(trade["quantity"]), Decimal(trade["price"]), trade["side"]) == (3, Decimal("250.5"), "buy")
        assert (await trade_on(bob, "NVDA"))["side"] == "sell"
        await bob.send({"type": "ping"})  # what bob's socket got up to now: nothing of alice's
        while (msg := await bob.recv()) is not None and msg["type"] != "pong":
            assert "TSLA" not in str(msg), msg

        stats = await serve.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
        feed = ujson.loads(stats.body)["feed"]
        assert feed["source"] == "alpaca-broker" and feed["connected"] is True
        assert feed["details"]["accounts"][ids["alice"]]["linked"] is True
        assert feed["details"]["accounts"][ids["bob"]]["accountId"] == bob_id
        assert BROKER_SECRET.encode() not in stats.body and BROKER_KEY.encode() not in stats.body
        for client in (alice, bob):
            client.close()
    finally:
        await serve.stop()
        await alpaca.stop()
    log = serve.log.read_text()
    assert "broker" in log and BROKER_SECRET not in log and BROKER_KEY not in log
