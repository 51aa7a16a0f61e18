"""Shared setup of the ``serve`` tests with the local Alpaca (test_serve_linked.py: ``--feed
alpaca`` and linked accounts; test_serve_broker.py: ``--feed alpaca-broker``): the local Alpaca
with the default portfolios, a ``portfolio-ws serve`` process with users alice and bob and their
sockets subscribed to every channel, ``portfolio-ws accounts`` run as a command, and what a socket
received read back."""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import ujson

from tests import ROOT
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, default_portfolios
from tests.harness import Client
from tests.procs import ServeProcess, add_users, clean_env

TOKEN = "admin-token-of-the-serve-alpaca-tests"
CHANNELS = ("positions", "orders", "account", "trades")


@dataclass
class Serving:
    alpaca: AlpacaTestServer
    serve: ServeProcess
    ids: dict[str, str]  # alice, bob -> their user ids
    sockets: dict[str, Client]  # alice, bob -> a socket subscribed to every channel

    async def feed_stats(self) -> tuple[dict[str, Any], bytes]:
        """The admin stats' feed part, and the whole answer as sent (to look for secrets in)."""
        stats = await self.serve.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
        return ujson.loads(stats.body)["feed"], stats.body


@asynccontextmanager
async def serving(tmp_path: Path, feed: str, env: Callable[[AlpacaTestServer], dict[str, str]],
                  config: Callable[[AlpacaTestServer, dict[str, str]], str]) -> AsyncIterator[Serving]:
    """``serve --feed <feed>`` against the local Alpaca: ``env(alpaca)`` added to its environment
    (linked accounts polled every 0.2 s, DEBUG logging, the admin token), ``config(alpaca, ids)``
    its config.yaml. Both are stopped at the end; ``serve.log`` can be read after."""
    alpaca = AlpacaTestServer()
    default_portfolios(alpaca, USERS)
    serve = ServeProcess(tmp_path, "--feed", feed, env={
        "PORTFOLIO_WS_ACCOUNTS_POLL_SECONDS": "0.2", "PORTFOLIO_WS_LOGGING_LEVEL": "DEBUG",
        "PORTFOLIO_WS_AUTH_ADMIN_TOKEN": TOKEN})
    try:
        await alpaca.start()
        serve.env.update(env(alpaca))
        ids = add_users(serve.database, ["alice", "bob"])
        (tmp_path / "config.yaml").write_text(config(alpaca, ids))
        await serve.start()
        sockets = {name: await serve.connect((await serve.login(name))[0]) for name in ids}
        for client in sockets.values():
            await client.subscribe(*CHANNELS)
        yield Serving(alpaca, serve, ids, sockets)
        for client in sockets.values():
            client.close()
    finally:
        await serve.stop()
        await alpaca.stop()


async def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    """``portfolio-ws accounts ARGS`` run as a command; what it printed (it must succeed)."""
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


async def nothing_of(client: Client, text: str) -> None:
    """Everything the socket got up to now (a ping's pong marks the end) has no ``text`` in it."""
    await client.send({"type": "ping"})
    while (msg := await client.recv()) is not None and msg["type"] != "pong":
        assert text not in str(msg), msg
