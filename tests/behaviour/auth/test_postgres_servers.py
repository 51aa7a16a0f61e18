"""Users and sessions in PostgreSQL (``auth.database`` = ``postgresql://...``), through real servers:
two portfolio-ws servers on one database (as on two hosts, no Redis) share logins and logouts, and
``portfolio-ws users`` manages the same users. The database is a private PostgreSQL the test
session starts (tests/postgres_server.py)."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

import cli
from portfolio_ws.auth.stores import open_user_store
from tests.harness import FAST_HASHER
from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401  (a fixture)

PASSWORD = "correct horse battery"


async def test_two_servers_on_one_postgresql_share_users_and_sessions(
        io_loop: Any, make_server: Any, postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database()
    a, b = await make_server(auth__database=url), await make_server(auth__database=url)
    a.add_user("alice")
    cookie = await b.login("alice")            # a user added on one host logs in on the other
    on_a = await a.connect(cookie)              # and the session is good on both
    on_b = await b.connect(cookie)
    for client in (on_a, on_b):
        await client.subscribe("positions")
        await client.expect("snapshot")
    me = await a.fetch("/api/auth/me", cookie=cookie)
    assert me.code == 200 and b"alice" in me.body
    assert (await a.fetch("/api/auth/logout", "POST", cookie=cookie)).code in (200, 204)
    assert (await b.fetch("/api/portfolio", cookie=cookie)).code == 401   # ended everywhere
    await b.service.recheck.run()  # the periodic re-check, now: b's socket of the ended session closes
    code, _ = await on_b.closed()
    assert code == 1008


def test_users_command_against_postgresql(postgres_server: PostgresServer, monkeypatch: Any) -> None:
    url = postgres_server.fresh_database()
    monkeypatch.setattr("portfolio_ws.auth.passwords.default_hasher", lambda: FAST_HASHER)
    runner = CliRunner()
    added = runner.invoke(cli.main, ["users", "add", "alice", "--database", url], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    again = runner.invoke(cli.main, ["users", "add", "ALICE", "--database", url], input=PASSWORD + "\n")
    assert again.exit_code == 2 and "already exists" in again.output
    listed = runner.invoke(cli.main, ["users", "list", "--database", url])
    assert listed.exit_code == 0 and "alice" in listed.output
    store = open_user_store(url)
    try:
        assert store.authenticate("alice", PASSWORD) is not None
    finally:
        store.close()
    removed = runner.invoke(cli.main, ["users", "remove", "alice", "--database", url])
    assert removed.exit_code == 0, removed.output
    assert "No users yet" in runner.invoke(cli.main, ["users", "list", "--database", url]).output


def test_an_unreachable_database_is_one_line_and_exit_2(monkeypatch: Any) -> None:
    from tests.redis_server import free_port

    url = f"postgresql://pws:hunter22@127.0.0.1:{free_port()}/users"
    result = CliRunner().invoke(cli.main, ["users", "list", "--database", url])
    assert result.exit_code == 2
    assert result.output.startswith("Error: auth.database: cannot connect to postgresql://pws@127.0.0.1:")
    assert "hunter22" not in result.output and result.output.count("\n") == 1
