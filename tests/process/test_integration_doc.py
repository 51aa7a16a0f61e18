"""docs/integration.md's examples work: each curl, Node (fetch), Python and command-line example is
run as written against a real server, and its trade must reach the user's socket exactly once."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from portfolio_ws.auth.apikeys import ApiKeyStore
from tests import ROOT

pytestmark = pytest.mark.slow  # real processes (the CLI, node, curl, python)

TEXT = (ROOT / "docs" / "integration.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(sh|js|python)\n(.*?)^```$", TEXT, flags=re.S | re.M)
# The examples that publish (the key commands of section 1 are exercised by tests/process/commands/test_keys_cli.py).
RUNNABLE = [(lang, code) for lang, code in BLOCKS if "PORTFOLIO_WS_URL" in code]


def command(lang: str, code: str, folder: Path) -> list[str]:
    if lang == "sh":
        return ["bash", "-euo", "pipefail", "-c", code]
    if lang == "python":
        return [sys.executable, "-c", code]
    script = folder / "example.mjs"  # top-level await: an ES module
    script.write_text(code)
    return [shutil.which("node") or "node", str(script)]


async def test_every_example_publishes_a_trade_the_users_socket_receives_once(make_server, tmp_path):
    assert [lang for lang, _ in RUNNABLE] == ["sh", "js", "python", "sh"]
    server = await make_server()
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.subscribe("trades")
    await client.expect("snapshot")
    store = ApiKeyStore(server.settings.auth.database)
    key = store.add("platform", ["publish"])[1]
    store.close()
    env = {**os.environ, "PORTFOLIO_WS_URL": server.url, "PORTFOLIO_WS_API_KEY": key, "USER_ID": user.user_id,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
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
