"""Linked accounts with the real thing: a ``portfolio-ws serve --feed alpaca`` process, alpaca-py
talking to the local Alpaca (tests/alpaca_server.py), and ``portfolio-ws accounts link/unlink`` run as
commands while it serves. A link starts the user's stream on their socket without a restart, an
unlink stops it, the environment-variable mapping streams beside it, and the secret is in neither the
database file nor the server's (DEBUG) log."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import ujson

from portfolio_ws.auth.linked import new_key
from tests import ROOT
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, default_portfolios
from tests.harness import Client
from tests.procs import ServeProcess, add_users, clean_env

pytestmark = pytest.mark.slow  # real processes (serve and the CLI)
TOKEN = "admin-token-of-the-linked-accounts-test"


async def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "accounts", *args, cwd=ROOT, env=clean_env(**env),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def trade_on(client: Client, symbol: str) -> dict[str, Any]:
    """The first trade of ``symbol`` the socket receives (alone or in a batch)."""
    while True:
        msg = await client.recv()
        assert msg is not None, "socket closed"
        trades = [msg["data"]] if msg["type"] == "trade_executed" else \
            (msg["data"].get("trades") or []) if msg["type"] == "batch" else []
        for trade in trades:
            if trade["symbol"] == symbol:
                return trade


async def test_a_linked_account_streams_to_its_users_socket_while_serve_runs(io_loop, tmp_path: Path):
    alpaca = AlpacaTestServer()
    default_portfolios(alpaca, USERS)
    await alpaca.start()
    alice_key, alice_secret = USERS["alice"]
    key = new_key()
    serve = ServeProcess(tmp_path, "--feed", "alpaca", env={
        "PORTFOLIO_WS_ACCOUNTS_KEY": key, "PORTFOLIO_WS_ACCOUNTS_POLL_SECONDS": "0.2",
        "PORTFOLIO_WS_ALPACA_TRADING_STREAM_URL": alpaca.trading_url,
        "PORTFOLIO_WS_ALPACA_DATA_STREAM_URL": alpaca.data_url, "PORTFOLIO_WS_ALPACA_REST_URL": alpaca.rest_url,
        "PORTFOLIO_WS_LOGGING_LEVEL": "DEBUG", "PORTFOLIO_WS_AUTH_ADMIN_TOKEN": TOKEN, "BOB_KEY": USERS["bob"][0], "BOB_SECRET": USERS["bob"][1]})
    ids = add_users(serve.database, ["alice", "bob"])
    (tmp_path / "config.yaml").write_text(  # bob: the environment-variable mapping, beside the linked alice
        f"alpaca:\n  accounts:\n    - {{user: {ids['bob']}, key_env: BOB_KEY, secret_env: BOB_SECRET}}\n")
    await serve.start()
    try:
        alice = await serve.connect((await serve.login("alice"))[0])
        bob = await serve.connect((await serve.login("bob"))[0])
        for client in (alice, bob):
            await client.subscribe("positions", "orders", "account", "trades")
        await alpaca.trading_listening(USERS["bob"][0])
        assert not alpaca.trading_listens[alice_key]

        env = {"PORTFOLIO_WS_ACCOUNTS_KEY": key}
        out = await cli(env, "link", "alice", "--database", serve.database, stdin=f"{alice_key}\n{alice_secret}\n")
        assert "Linked alice" in out and alice_secret not in out
        await alpaca.trading_listening(alice_key)  # no restart: the running feed picked it up
        await alpaca.rest_called(alice_key, "/v2/account", 1)
        stats = await serve.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
        accounts = ujson.loads(stats.body)["feed"]["details"]["accounts"]
        assert accounts[ids["alice"]]["linked"] is True and accounts[ids["bob"]]["linked"] is False
        assert alice_secret.encode() not in stats.body and alice_key.encode() not in stats.body
        alpaca.trade(alice_key, "TSLA", "buy", "3", "250.5")
        trade = await trade_on(alice, "TSLA")
        assert (Decimal(trade["quantity"]), Decimal(trade["price"]), trade["side"]) == (3, Decimal("250.5"), "buy")

        await cli(env, "unlink", "alice", "--database", serve.database)
        await alpaca.wait_for(lambda: not any(c.key == alice_key for c in alpaca.trading_conns),
                              what="alice's stream closed")
        alpaca.trade(alice_key, "AMD", "buy", "1", "150")  # nobody listens for alice any more
        alpaca.trade(USERS["bob"][0], "NVDA", "sell", "1", "521")
        assert (await trade_on(bob, "NVDA"))["side"] == "sell"  # the environment mapping still streams
        await alice.send({"type": "ping"})  # what alice's socket got up to now: no AMD at all
        while (msg := await alice.recv()) is not None and msg["type"] != "pong":
            assert "AMD" not in str(msg), msg
        for client in (alice, bob):
            client.close()
    finally:
        await serve.stop()
        await alpaca.stop()
    log = serve.log.read_text()
    assert "linked account started" in log and alice_secret not in log
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("serve.sqlite3*"))
    assert alice_secret.encode() not in stored
