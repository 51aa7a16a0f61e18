"""Graceful shutdown (PROTOCOL.md close codes; issue: SIGINT/SIGTERM flush, 1001 to every client, exit 0).

In-process through ``Service.shutdown()``, and as a real ``serve`` process sent SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time

import pytest
from tornado.tcpclient import TCPClient

from tests.builders import account, position
from tests.harness import RECV_TIMEOUT
from tests.procs import add_users, serve_process  # noqa: F401  (a fixture)

LONG_WINDOW = 600_000
SHUTTING_DOWN = (1001, "Server shutting down")


# ---- in-process ----------------------------------------------------------------------------
@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
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


# ---- a real process (tests/procs.py) ----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("signum, loop", [(signal.SIGTERM, "asyncio"), (signal.SIGINT, "asyncio"),
                                          (signal.SIGTERM, "uvloop")], ids=["SIGTERM", "SIGINT", "SIGTERM-uvloop"])
async def test_serve_process_closes_every_client_1001_and_exits_0_on_signal(serve_process, tmp_path, signum, loop):
    server = serve_process(env={"PORTFOLIO_WS_SERVER_EVENT_LOOP": loop})
    add_users(server.database, ["alice"])
    await server.start()
    cookie, _ = await server.login("alice")
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

    from tests.behaviour.server.test_heartbeat import raw_upgrade

    server = await make_server()
    _, cookie = await server.user_session("mute")
    reader, writer = await raw_upgrade(server, cookie)
    await server.until(lambda: len(server.connection_ids()) == 1)  # the upgrade is registered
    started = _asyncio.get_running_loop().time()
    await server.service.shutdown(drain_seconds=0.2)  # shorter than Tornado's own 5 s close timeout
    assert _asyncio.get_running_loop().time() - started < 3
    assert await _asyncio.wait_for(reader.read(), 5) is not None  # the server closed the TCP connection
    writer.close()
