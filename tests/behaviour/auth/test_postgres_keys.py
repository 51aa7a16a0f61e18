"""API keys in PostgreSQL (``auth.database`` = ``postgresql://...``): ``portfolio-ws keys`` adds,
lists and revokes them there, and a running server takes a new key at once and refuses a revoked
one from the next request, without a restart. The database is a private PostgreSQL the test
session starts (tests/postgres_server.py)."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import ujson
from click.testing import CliRunner

import cli
from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401  (a fixture)
from tests.publishing import publish, trade_item


def keys(*args: str) -> Any:
    return CliRunner().invoke(cli.main, ["keys", *args])


async def test_a_key_added_to_postgresql_publishes_on_a_running_server_until_revoked(
        make_server: Any, postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database()
    server = await make_server(auth__database=url)
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.subscribe("trades")
    await client.expect("snapshot")
    item = trade_item(user.user_id, "fill-1")
    assert (await publish(server, [item], "pws_000000000000_" + "A" * 43)).code == 401
    added = keys("add", "platform", "--scope", "publish", "--database", url)  # while the server runs
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    response = await publish(server, [item], key)
    assert response.code == 200 and ujson.loads(response.body)["accepted"] == 1, response.body
    assert (await client.expect("trade_executed"))["data"]["tradeId"] == "t-1"
    listed = keys("list", "--database", url)
    assert listed.exit_code == 0 and "platform" in listed.stdout and key not in listed.output
    with psycopg.connect(url) as conn:  # only the secret's digest is in the database
        rows = repr(conn.execute("SELECT * FROM api_keys").fetchall())
    secret = key.split("_", 2)[2]
    assert secret not in rows and hashlib.sha256(secret.encode()).hexdigest() in rows
    assert keys("revoke", "platform", "--database", url).exit_code == 0
    assert (await publish(server, [trade_item(user.user_id, "fill-2", "t-2")], key)).code == 401
    await client.assert_nothing_pending()
    again = keys("add", "PLATFORM", "--scope", "publish", "--database", url)
    assert again.exit_code == 0  # the name is free once revoked
    assert keys("add", "platform", "--scope", "read", "--database", url).exit_code == 2
