"""Linked accounts with the real thing: a ``portfolio-ws serve --feed alpaca`` process, alpaca-py
talking to the local Alpaca (tests/alpaca_server.py), and ``portfolio-ws accounts link/unlink`` run as
commands while it serves. A link starts the user's stream on their socket without a restart, an
unlink stops it, the environment-variable mapping streams beside it, and the secret is in neither the
database file nor the server's (DEBUG) log. The shared setup: alpaca_serve.py."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from portfolio_ws.auth.linked import new_key
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS
from tests.process.commands.alpaca_serve import cli, nothing_of, serving, trade_on

pytestmark = pytest.mark.slow  # real processes (serve and the CLI)


async def test_a_linked_account_streams_to_its_users_socket_while_serve_runs(io_loop, tmp_path: Path):
    alice_key, alice_secret = USERS["alice"]
    key = new_key()

    def env(alpaca: AlpacaTestServer) -> dict[str, str]:
        return {"PORTFOLIO_WS_ACCOUNTS_KEY": key, "PORTFOLIO_WS_ALPACA_TRADING_STREAM_URL": alpaca.trading_url,
                "PORTFOLIO_WS_ALPACA_DATA_STREAM_URL": alpaca.data_url,
                "PORTFOLIO_WS_ALPACA_REST_URL": alpaca.rest_url, "BOB_KEY": USERS["bob"][0],
                "BOB_SECRET": USERS["bob"][1]}

    def config(alpaca: AlpacaTestServer, ids: dict[str, str]) -> str:
        # bob: the environment-variable mapping, beside the linked alice
        return f"alpaca:\n  accounts:\n    - {{user: {ids['bob']}, key_env: BOB_KEY, secret_env: BOB_SECRET}}\n"

    async with serving(tmp_path, "alpaca", env, config) as running:
        alpaca, serve, ids = running.alpaca, running.serve, running.ids
        alice, bob = running.sockets["alice"], running.sockets["bob"]
        await alpaca.trading_listening(USERS["bob"][0])
        assert not alpaca.trading_listens[alice_key]

        cli_env = {"PORTFOLIO_WS_ACCOUNTS_KEY": key}
        out = await cli(cli_env, "link", "alice", "--database", serve.database, stdin=f"{alice_key}\n{alice_secret}\n")
        assert "Linked alice" in out and alice_secret not in out
        await alpaca.trading_listening(alice_key)  # no restart: the running feed picked it up
        await alpaca.rest_called(alice_key, "/v2/account", 1)
        feed, body = await running.feed_stats()
        accounts = feed["details"]["accounts"]
        assert accounts[ids["alice"]]["linked"] is True and accounts[ids["bob"]]["linked"] is False
        assert alice_secret.encode() not in body and alice_key.encode() not in body
        alpaca.trade(alice_key, "TSLA", "buy", "3", "250.5")
        trade = await trade_on(alice, "TSLA")
        assert (Decimal(trade["quantity"]), Decimal(trade["price"]), trade["side"]) == (3, Decimal("250.5"), "buy")

        await cli(cli_env, "unlink", "alice", "--database", serve.database)
        await alpaca.wait_for(lambda: not any(c.key == alice_key for c in alpaca.trading_conns),
                              what="alice's stream closed")
        alpaca.trade(alice_key, "AMD", "buy", "1", "150")  # nobody listens for alice any more
        alpaca.trade(USERS["bob"][0], "NVDA", "sell", "1", "521")
        assert (await trade_on(bob, "NVDA"))["side"] == "sell"  # the environment mapping still streams
        await nothing_of(alice, "AMD")  # what alice's socket got up to now: no AMD at all
    log = serve.log.read_text()
    assert "linked account started" in log and alice_secret not in log
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("serve.sqlite3*"))
    assert alice_secret.encode() not in stored
