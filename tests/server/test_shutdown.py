"""Graceful shutdown (PROTOCOL.md close codes; issue: SIGINT/SIGTERM flush, 1001 to every client, exit 0).

In-process through ``Service.shutdown()``, and as a real ``serve`` process sent SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import ujson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.tcpclient import TCPClient
from tornado.websocket import websocket_connect

from tests.builders import account, position
from tests.harness import PASSWORD, RECV_TIMEOUT, Client

LONG_WINDOW = 600_000
ROOT = Path(__file__).resolve().parents[2]
SHUTTING_DOWN = (1001, "Server shutting down")


# ---- in-process ----------------------------------------------------------------------------
async def test_shutdown_flushes_pending_batches_then_closes_every_client_1001(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    alice, alice_cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    a1 = await server.connect(alice_cookie)
    a2 = await server.connect(alice_cookie)
    b1 = await server.connect(bob_cookie)
    idle = await server.connect(bob_cookie)  # subscribed to nothing
    for client in (a1, a2, b1):
        await client.subscribe("positions", "account")
        await client.expect("snapshot")
    server.publish(position(alice.user_id, "AAPL", "100"))  # waits in the window
    server.publish(position(alice.user_id, "AAPL", "101"))
    server.publish(account(bob.user_id))

    await server.service.shutdown()

    for client in (a1, a2):
        pending = await client.expect("position_update")
        assert pending["seq"] == 2 and pending["data"]["quantity"] == "101"
    assert (await b1.expect("account_update"))["seq"] == 1
    for client in (a1, a2, b1, idle):
        assert (await client.expect("error"))["data"]["code"] == "SERVER_SHUTTING_DOWN"
        assert await client.recv() is None
        assert (client.close_code, client.close_reason) == SHUTTING_DOWN
    assert not server.service.sockets


async def test_a_socket_opened_during_shutdown_is_told_to_come_back(make_server):
    """1001, not 1008: the client must reconnect to the next server, not ask its user to log in."""
    server = await make_server()
    _, cookie = await server.user_session("alice")
    await server.service.shutdown()
    client = await server.connect(cookie, expect_connected=False)
    assert (await client.expect("error"))["data"]["code"] == "SERVER_SHUTTING_DOWN"
    assert await client.recv() is None
    assert (client.close_code, client.close_reason) == SHUTTING_DOWN


@pytest.mark.slow
async def test_shutdown_does_not_wait_for_a_client_that_never_answers_the_close(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    responsive = await server.connect(cookie)
    # A peer that completes the upgrade and then never reads or answers again.
    stream = await TCPClient().connect("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.write((f"GET /ws/portfolio HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nCookie: session={cookie}\r\n\r\n").encode())
    head = await stream.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    started = time.monotonic()
    await asyncio.wait_for(server.service.shutdown(drain_seconds=0.5), 5)
    assert time.monotonic() - started < 3
    assert not server.service.sockets
    assert (await responsive.expect("error"))["data"]["code"] == "SERVER_SHUTTING_DOWN"
    assert await responsive.recv() is None and (responsive.close_code, responsive.close_reason) == SHUTTING_DOWN
    sent = await asyncio.wait_for(stream.read_until_close(), 5)  # the server dropped the silent peer
    assert b"\x03\xe9Server shutting down" in sent  # and it had been sent its 1001 close frame too


# ---- a real process ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # type: ignore[no-any-return]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PORTFOLIO_WS_") and k != "ENABLE_REALTIME_PORTFOLIO"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


async def run_cli(cwd: Path, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *args, cwd=cwd, env=clean_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    return proc.returncode or 0, out.decode(), err.decode()


class ServeProcess:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.database = str(tmp_path / "serve.sqlite3")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "serve.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.http = AsyncHTTPClient(force_instance=True)

    async def start(self) -> None:
        with open(self.log, "wb") as log:  # a file, not a pipe: nothing can block the server's writes
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "serve", "--port", str(self.port), "--feed", "none",
                "--database", self.database, cwd=self.tmp_path, env={**clean_env(), **self.env},
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        await self.wait_ready()

    async def wait_ready(self, limit: float = 30.0) -> None:
        """Poll /api/health until it answers (bounded), failing early if the process died."""
        deadline = time.monotonic() + limit
        while True:
            assert self.proc is not None
            if self.proc.returncode is not None:
                pytest.fail(f"serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                response = await self.http.fetch(self.url + "/api/health", request_timeout=2)
                assert response.code == 200
                return
            except (ConnectionError, HTTPClientError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve not ready after {limit}s:\n{self.log.read_text()}")
            await asyncio.sleep(0.05)

    async def login(self, username: str) -> str:
        response = await self.http.fetch(self.url + "/api/auth/login", method="POST",
                                         headers={"Content-Type": "application/json"},
                                         body=ujson.dumps({"username": username, "password": PASSWORD}))
        return response.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]

    async def connect(self, cookie: str) -> Client:
        request = HTTPRequest(f"ws://127.0.0.1:{self.port}/ws/portfolio", headers={"Cookie": f"session={cookie}"})
        client = Client(await websocket_connect(request))
        await client.expect("info", "CONNECTED")
        return client

    async def stop(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
def serve_process(io_loop: Any, tmp_path: Path) -> Any:
    processes: list[ServeProcess] = []

    def factory(**env: str) -> ServeProcess:
        process = ServeProcess(tmp_path, **env)
        processes.append(process)
        return process

    yield factory
    for process in processes:
        io_loop.run_sync(process.stop, timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("signum, loop", [(signal.SIGTERM, "asyncio"), (signal.SIGINT, "asyncio"),
                                          (signal.SIGTERM, "uvloop")], ids=["SIGTERM", "SIGINT", "SIGTERM-uvloop"])
async def test_serve_process_closes_every_client_1001_and_exits_0_on_signal(serve_process, tmp_path, signum, loop):
    server = serve_process(PORTFOLIO_WS_SERVER_EVENT_LOOP=loop)
    status, out, err = await run_cli(tmp_path, "users", "add", "alice", "--database", server.database,
                                     "--password-stdin", stdin=PASSWORD.encode() + b"\n")
    assert status == 0, err
    await server.start()
    cookie = await server.login("alice")
    clients = [await server.connect(cookie) for _ in range(3)]
    for client in clients:
        await client.subscribe("positions")
        await client.expect("snapshot")

    assert server.proc is not None
    started = time.monotonic()
    server.proc.send_signal(signum)
    for client in clients:
        while (msg := await client.recv(RECV_TIMEOUT)) is not None:
            if msg["type"] == "error":  # the last message: the close's cause
                assert msg["data"]["code"] == "SERVER_SHUTTING_DOWN", msg
                assert await client.recv(RECV_TIMEOUT) is None
                break
            assert msg["type"] != "info", msg
        assert (client.close_code, client.close_reason) == SHUTTING_DOWN
    returncode = await asyncio.wait_for(server.proc.wait(), 10)
    assert returncode == 0, server.log.read_text()
    assert time.monotonic() - started < 5, "shutdown took too long"
    log = server.log.read_text()
    assert "Traceback" not in log, log
    assert f"loop: {loop})" in log, log


@pytest.mark.slow
async def test_a_peer_that_ignores_the_close_frame_is_dropped_after_a_short_drain(make_server):
    import asyncio as _asyncio

    from tests.server.test_heartbeat import raw_upgrade

    server = await make_server()
    _, cookie = await server.user_session("mute")
    reader, writer = await raw_upgrade(server, cookie)
    while not server.service.core.hub.connections:
        await _asyncio.sleep(0)  # yield until the upgrade is registered
    started = _asyncio.get_running_loop().time()
    await server.service.shutdown(drain_seconds=0.2)  # shorter than Tornado's own 5 s close timeout
    assert _asyncio.get_running_loop().time() - started < 3
    assert await _asyncio.wait_for(reader.read(), 5) is not None  # the server closed the TCP connection
    writer.close()
