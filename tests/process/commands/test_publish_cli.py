"""``portfolio-ws publish`` as a user runs it: NDJSON on stdin to a real server, refused lines named
by their line number, exit 0 / 1 / 2."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.publishing import new_key, trade_item, watching

pytestmark = pytest.mark.slow  # real processes (the CLI, node, curl, python)

CLI = str(Path(sys.executable).parent / "portfolio-ws")


async def run(stdin: str, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(CLI, "publish", *args, env=env, stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_lines_are_published_and_refused_ones_named_by_line(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice", "trades")
    key = new_key(server)
    env = {**os.environ, "PORTFOLIO_WS_API_KEY": key}
    bad = trade_item(user_id, "b", "t-b")
    bad["data"]["side"] = "hold"
    twice = json.dumps(trade_item(user_id, "d", "t-d")).replace('"side": "buy"', '"side": "buy", "side": "sell"')
    lines = [json.dumps(trade_item(user_id, "a", "t-a")), "{not json", "", json.dumps(bad),
             json.dumps(trade_item(user_id, "c", "t-c")), twice]
    code, out, err = await run("\n".join(lines) + "\n", env, "--url", server.url, "--batch-size", "1")
    assert code == 1, err
    assert "line 2: not JSON" in err and "line 4.data.side:" in err
    assert "line 6: not JSON: the name 'side' appears twice" in err  # as the server reads it: refused alone
    assert "2 accepted, 0 already taken, 3 refused" in err
    assert [(await client.expect("trade_executed"))["data"]["tradeId"] for _ in range(2)] == ["t-a", "t-c"]
    code, _, err = await run("\n".join(lines[:1]) + "\n", env, "--url", server.url)
    assert code == 0 and "0 accepted, 1 already taken, 0 refused" in err
    await client.assert_nothing_pending()
    code, _, err = await run(lines[0], {**env, "PORTFOLIO_WS_API_KEY": key + "x"}, "--url", server.url)
    assert code == 2 and "401" in err and key not in err
    code, _, err = await run(lines[0], {k: v for k, v in env.items() if k != "PORTFOLIO_WS_API_KEY"}, "--url", server.url)
    assert code == 2 and "PORTFOLIO_WS_API_KEY" in err
