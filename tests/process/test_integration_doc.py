"""docs/integration.md's examples work: each curl, Node (fetch), Python and command-line example is
run as written against a real server, and its trade must reach the user's socket exactly once; so
must each Redis Streams example's (redis-cli, redis-py), against a node reading the stream."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
import ujson

from tests import ROOT
from tests.process.cluster.conftest import make_node  # noqa: F401  (a fixture: a node on a real redis-server)
from tests.publishing import new_key, watching
from tests.redis_server import redis_server  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow  # real processes (the CLI, node, curl, python)

TEXT = (ROOT / "docs" / "integration.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(sh|js|python)\n(.*?)^```$", TEXT, flags=re.S | re.M)
# The examples that publish (the key commands of section 1 are exercised by tests/process/commands/test_keys_cli.py).
RUNNABLE = [(lang, code) for lang, code in BLOCKS
            if "PORTFOLIO_WS_URL" in code and "/api/v1/users" not in code and ".sync(" not in code]
# Section 8's: a sync replacing a user's whole state.
SYNC_EXAMPLES = [(lang, code) for lang, code in BLOCKS if "/portfolio" in code or ".sync(" in code]
# Section 7's: creating and removing users with an admin key.
USER_EXAMPLES = [code for lang, code in BLOCKS if "/api/v1/users" in code and (lang, code) not in SYNC_EXAMPLES]


def command(lang: str, code: str, folder: Path) -> list[str]:
    if lang == "sh":
        return ["bash", "-euo", "pipefail", "-c", code]
    if lang == "python":
        return [sys.executable, "-c", code]
    script = folder / "example.mjs"  # top-level await: an ES module
    script.write_text(code)
    return [shutil.which("node") or "node", str(script)]


async def watched_user(server: Any, *channels: str) -> tuple[Any, dict[str, str]]:
    """alice's socket subscribed to ``channels`` (its snapshot read), and the examples' environment:
    the server's URL, a ``publish`` key, alice's id."""
    user_id, client = await watching(server, "alice", *channels)
    return client, {**os.environ, "PORTFOLIO_WS_URL": server.url, "PORTFOLIO_WS_API_KEY": new_key(server), "USER_ID": user_id,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


async def test_every_example_publishes_a_trade_the_users_socket_receives_once(make_server, tmp_path):
    assert [lang for lang, _ in RUNNABLE] == ["sh", "js", "python", "sh"]
    client, env = await watched_user(await make_server(), "trades")
    for lang, code in RUNNABLE:
        trade_id = re.search(r'tradeId: "([^"]+)"|"tradeId": "([^"]+)"', code)
        assert trade_id is not None, code
        expected = trade_id.group(1) or trade_id.group(2)
        for attempt in range(2):  # run twice: the second run is a retry with the same id
            process = await asyncio.create_subprocess_exec(*command(lang, code, tmp_path), env=env,
                                                           stdout=asyncio.subprocess.PIPE,
                                                           stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, (lang, out, err)
            assert b"refused" not in out + err.replace(b"0 refused", b""), (lang, out, err)
        message = await client.expect("trade_executed")
        assert message["data"]["tradeId"] == expected
        await client.assert_nothing_pending()  # the second run delivered nothing


# Section 5's examples: XADD with redis-cli and with redis-py, against a node reading the stream.
STREAM_EXAMPLES = [(lang, code) for lang, code in BLOCKS if "REDIS_URL" in code]


async def test_every_redis_streams_example_adds_a_trade_the_users_socket_receives_once(make_node, redis_server,
                                                                                        tmp_path):
    assert [lang for lang, _ in STREAM_EXAMPLES] == ["sh", "python"]
    node = await make_node(ingest__enabled=True)
    user = node.add_user("alice")
    client = await node.connect(await node.login("alice"))
    await client.subscribe("trades")
    await client.expect("snapshot")
    env = {**os.environ, "REDIS_URL": redis_server.url, "USER_ID": user.user_id,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    for lang, code in STREAM_EXAMPLES:
        expected = re.search(r'"tradeId": "([^"]+)"', code).group(1)
        for attempt in range(2):  # run twice: the second entry has the same id
            process = await asyncio.create_subprocess_exec(*command(lang, code, tmp_path), env=env,
                                                           stdout=asyncio.subprocess.PIPE,
                                                           stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, (lang, out, err)
        message = await client.expect("trade_executed")
        assert message["data"]["tradeId"] == expected
        # One node publishes in stream order: a fresh entry after the two comes next, so the second
        # (the same id) delivered nothing.
        marker = {"type": "trade", "userId": user.user_id, "id": f"after-{expected}",
                  "data": {"tradeId": f"after-{expected}", "symbol": "NVDA", "side": "buy", "quantity": "1",
                           "price": "1.00", "executedAt": "2026-01-05T15:42:00Z"}}
        await raw.xadd("pws:ingest", {"event": ujson.dumps(marker)})
        assert (await client.expect("trade_executed"))["data"]["tradeId"] == f"after-{expected}"
    await raw.aclose()
    await client.assert_nothing_pending()


async def run_example(code: str, env: dict[str, str], folder: Path) -> bytes:
    process = await asyncio.create_subprocess_exec(*command("sh", code, folder), env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (code, out, err)
    return out


async def test_the_user_examples_create_a_user_once_and_remove_one_closing_its_sockets(make_server, tmp_path):
    [create, remove] = USER_EXAMPLES
    server = await make_server()
    key = new_key(server, "platform-admin", scope="admin")
    env = {**os.environ, "PORTFOLIO_WS_URL": server.url, "PORTFOLIO_WS_ADMIN_KEY": key}
    first = ujson.loads(await run_example(create, env, tmp_path))
    retried = ujson.loads(await run_example(create, env, tmp_path))  # a retry: 409, the same id
    assert first["username"] == "carol" and retried["error"]["code"] == "USER_EXISTS"
    assert retried["userId"] == first["userId"] == server.users.by_username("carol").user_id
    user_id, client = await watching(server, "alice", "trades")
    assert await run_example(remove, {**env, "USER_ID": user_id}, tmp_path) == b""
    assert (await client.expect("error"))["data"]["code"] == "SESSION_EXPIRED"
    assert (await client.closed())[0] == 1008
    assert server.users.get(user_id) is None


async def test_every_sync_example_replaces_the_users_positions_and_the_socket_gets_a_snapshot(make_server,
                                                                                              tmp_path):
    assert [lang for lang, _ in SYNC_EXAMPLES] == ["sh", "js", "python"]
    client, env = await watched_user(await make_server(), "positions", "account")
    for lang, code in SYNC_EXAMPLES:
        symbols = re.findall(r'"?symbol"?: "([A-Z]+)"', code)
        process = await asyncio.create_subprocess_exec(*command(lang, code, tmp_path), env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, (lang, out, err)
        snapshot = await client.expect("snapshot")
        assert [p["symbol"] for p in snapshot["data"]["positions"]] == symbols, (lang, snapshot)
        assert (snapshot["data"]["account"] is None) == ('"account": {' not in code), (lang, snapshot)
        await client.assert_nothing_pending()
