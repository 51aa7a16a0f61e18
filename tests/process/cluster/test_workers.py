"""``serve --workers N`` (issue 8): N processes on one port through SO_REUSEPORT, sharing sessions
and events through Redis; a worker that dies is started again; SIGTERM stops them all, every client
getting 1001. Real processes, a private redis-server."""

from __future__ import annotations

import pytest

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ujson
from tornado.websocket import WebSocketClosedError

from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)
from tests.procs import ROOT, add_users, clean_env, serve_process  # noqa: F401  (a fixture)

TOKEN = "workers-admin-token-1234"
SHUTTING_DOWN = (1001, "Server shutting down")


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("PPid:")).split()[1])


async def answering_pids(server: Any, want: int, tries: int = 100, patience: float = 0.0) -> set[int]:
    """Worker pids seen answering admin stats, one new connection per request (the kernel picks);
    ``patience``: seconds to go on past ``tries`` until ``want`` answered (workers still starting)."""
    seen: set[int] = set()
    deadline = time.monotonic() + patience
    for attempt in itertools.count():
        if attempt >= tries and (len(seen) >= want or time.monotonic() > deadline):
            break
        if attempt >= tries:
            await asyncio.sleep(0.05)  # a worker still starting: polling processes, nothing to await
        try:
            response = await server.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
        except OSError:  # a connection the kernel gave the worker just killed: reset, as clients see it
            await asyncio.sleep(0.05)
            continue
        stats = ujson.loads(response.body)
        seen.add(stats["node"]["pid"])
        if len(seen) >= want:
            break
    return seen


async def test_two_workers_share_one_port_and_sessions_restart_and_stop_together(serve_process, redis_server):
    server = serve_process("--workers", "2", env={"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_server.url,
                                                  "PORTFOLIO_WS_CLUSTER_NODE_ID": "box",
                                                  "PORTFOLIO_WS_AUTH_ADMIN_TOKEN": TOKEN})
    add_users(server.database, ["alice"])
    await server.start()
    assert server.proc is not None
    try:
        pids = await answering_pids(server, 2, patience=20)  # the workers start side by side
        assert len(pids) == 2 and {parent_of(pid) for pid in pids} == {server.proc.pid}

        cookie, _ = await server.login("alice")  # a session made by one worker is valid on both
        clients = [await server.connect(cookie) for _ in range(4)]
        for client in clients:
            await client.subscribe("positions", "account")
            await client.expect("snapshot")

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)  # a crashed worker is started again
        deadline = time.monotonic() + 20
        replaced: set[int] = set()
        while not replaced and time.monotonic() < deadline:
            replaced = await answering_pids(server, 3, tries=20) - pids
        assert replaced, "the killed worker was not replaced"
        [new_pid] = replaced
        assert parent_of(new_pid) == server.proc.pid

        survivors = []
        for client in clients:  # those on the killed worker lost their socket; the others stream on
            try:
                await client.send({"type": "ping"})
            except WebSocketClosedError:
                continue
            reply = await client.recv()
            if reply is not None:
                assert reply["type"] == "pong"
                survivors.append(client)
        survivors.append(await server.connect(cookie))

        server.proc.send_signal(signal.SIGTERM)
        for client in survivors:
            assert await client.closed() == SHUTTING_DOWN
        assert await server.wait(20) == 0
        for pid in (pids - {victim}) | {new_pid}:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        for pid in os.popen(f"pgrep -P {server.proc.pid}").read().split():
            os.kill(int(pid), signal.SIGKILL)


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
def test_more_than_one_worker_without_redis_is_a_bad_setting(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cli", "serve", "--workers", "2", "--port", "1",
                             "--database", str(tmp_path / "x.sqlite3")], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: invalid setting server.workers: more than 1 needs cluster.redis_url "
        "(workers share events, offsets and sessions through Redis)"]
