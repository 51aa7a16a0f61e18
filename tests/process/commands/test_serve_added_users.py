"""``serve --feed simulator`` picks up users added while it runs (an operator's trial: a user added
with ``portfolio-ws users add`` after the start got no simulated events, an empty portfolio, until
the server restarted)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.procs import add_users, serve_process  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow  # a real serve process

ALL = ("positions", "orders", "account", "trades")


async def test_a_user_added_while_serve_runs_starts_trading(serve_process: Any) -> None:
    server = serve_process("--feed", "simulator", env={"PORTFOLIO_WS_SIMULATOR_USER_POLL_SECONDS": "0.2",
                                                         "PORTFOLIO_WS_SIMULATOR_SEED": "5"})
    add_users(server.database, ["alice"])
    await server.start()
    add_users(server.database, ["bob"])  # while it runs, as `portfolio-ws users add` does
    cookie, _ = await server.login("bob")
    client = await server.connect(cookie)
    await client.subscribe(*ALL)
    message = await client.expect("snapshot")
    while not message["data"].get("account"):  # his starting state: at once, or within the poll
        message = await client.recv()
        assert message is not None, "closed"
    health = await server.fetch("/api/health")
    assert health.code == 200
