"""Packaging proof: ``npm pack`` makes a tarball; a fresh folder installs it with typescript and ws;
``tsc --noEmit`` passes on the typed example (clients/js/examples/typed-client.ts); the API document's
Node.js example, then the typed client, connect to a real server and print live events."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.builders import account, position
from tests.process.clients_js.npm import PACKAGE, run, tool

EXAMPLES = PACKAGE / "examples"
WAIT = 30.0
pytestmark = pytest.mark.slow  # npm pack and two npm installs


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fresh project, with the typed example type-checked (tsc --noEmit) and then compiled. Done
    in a (synchronous) fixture: npm's time does not count against the async test's timeout."""
    app = fresh_project(tmp_path_factory.mktemp("packaging"))
    (app / "example.ts").write_text((EXAMPLES / "typed-client.ts").read_text())
    (app / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
                            "strict": True, "outDir": "out", "skipLibCheck": False},
        "files": ["example.ts"]}))
    tsc = str(app / "node_modules" / "typescript" / "bin" / "tsc")
    run("node", tsc, "--noEmit", "-p", ".", cwd=app)   # the Done-when: tsc --noEmit on a typed example
    run("node", tsc, "-p", ".", cwd=app)                # then compiled, to run it
    return app


def fresh_project(tmp: Path) -> Path:
    """A new folder with the packed tarball, typescript, ws and ws's types installed, as a user would."""
    packed = run("npm", "pack", "--pack-destination", str(tmp)).stdout.strip().splitlines()[-1]
    tarball = tmp / packed
    assert tarball.is_file(), packed
    app = tmp / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "proof", "private": True, "type": "module"}))
    dev = json.loads((PACKAGE / "package.json").read_text())["devDependencies"]
    run("npm", "install", str(tarball), f"typescript@{dev['typescript']}", f"ws@{dev['ws']}", "@types/ws@^8",
        cwd=app)
    installed = json.loads((app / "node_modules" / "portfolio-ws-client" / "package.json").read_text())
    assert installed["name"] == "portfolio-ws-client" and not (app / "node_modules" / "portfolio-ws-client" / "test").exists()
    return app


async def lines_until(proc: asyncio.subprocess.Process, wanted: str, seen: list[str]) -> None:
    """Read the program's output until a line containing ``wanted``."""
    assert proc.stdout is not None
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        assert raw, f"the program ended before printing {wanted!r}: {seen}"
        seen.append(raw.decode().rstrip())
        if wanted in seen[-1]:
            return


def test_a_type_error_in_a_program_on_the_package_is_caught(app: Path) -> None:
    """The declarations really constrain users: a wrong field and a wrong option fail tsc."""
    (app / "wrong.ts").write_text(
        'import { PortfolioStream, type Position } from "portfolio-ws-client";\n'
        'const p: Position = { symbol: "AAPL" } as Position;\n'
        'const n: number = p.quantity;\n'                       # quantity is a decimal string
        'new PortfolioStream({ url: "ws://x/ws/portfolio", maxTrades: "100" });\n')
    tsc = str(app / "node_modules" / "typescript" / "bin" / "tsc")
    done = subprocess.run([tool("node"), tsc, "--noEmit", "--strict", "--module", "NodeNext",
                           "--moduleResolution", "NodeNext", "wrong.ts"], cwd=app, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0
    assert "wrong.ts(3," in done.stdout and "wrong.ts(4," in done.stdout, done.stdout


async def test_the_packed_tarball_installs_type_checks_and_streams_from_a_real_server(make_server: Any,
                                                                                    app: Path) -> None:
    server = await make_server()
    user, session = await server.user_session("alice")
    server.publish(position(user.user_id, "AAPL", "100"))
    server.publish(account(user.user_id))

    # 1. The API document's Node.js example, as written (CommonJS, ws), with a session and our URL.
    example = (EXAMPLES / "api-doc-node-client.cjs").read_text().replace("wss://your-domain.com", server.ws_url.rsplit("/ws/", 1)[0])
    (app / "api-doc-example.cjs").write_text(f"const sessionId = {json.dumps(session)};\n{example}")
    proc = await asyncio.create_subprocess_exec(tool("node"), "api-doc-example.cjs", cwd=app,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []
    try:
        await lines_until(proc, "Connected", seen)
        await lines_until(proc, "Event: snapshot", seen)
        server.publish(position(user.user_id, "AAPL", "100", price="180.25"))
        await lines_until(proc, "Event: position_update", seen)
        await lines_until(proc, "currentPrice: '180.25'", seen)  # node prints the object over several lines
    finally:
        proc.terminate()
        await proc.wait()

    # 2. The typed client, compiled: live events, then it stops by itself after one live position.
    proc = await asyncio.create_subprocess_exec(
        tool("node"), "out/example.js", cwd=app, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PORTFOLIO_WS_URL": server.ws_url, "SESSION_ID": session, "EVENTS": "1"})
    seen = []
    try:
        await lines_until(proc, "connected conn-", seen)
        await lines_until(proc, "account equity", seen)  # the snapshot's items
        server.publish(position(user.user_id, "MSFT", "5", price="410.10"))
        await lines_until(proc, "position MSFT long 5 @ 410.10", seen)
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0, seen
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    assert "status connected" in seen and any(line.startswith("snapshot seq=") for line in seen), seen
    assert any(line.endswith(" live") and "MSFT" in line for line in seen), seen
