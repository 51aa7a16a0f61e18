"""Dead or silent peers, internal errors and restarts: each ends in a close code that tells the
client to reconnect (PROTOCOL.md known defect: heartbeat timeouts closed 1000)."""

import asyncio
import base64
import os
import struct
import time

from tests.builders import position
from tests.harness import start_server


async def raw_upgrade(server, cookie):
    """A WebSocket peer that completes the handshake and then never answers a ping."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws/portfolio HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Cookie: session={cookie}\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def read_close(reader):
    """Read frames until a close frame; returns (code, reason). Pings are read and ignored."""
    while True:
        b0, b1 = await reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        payload = await reader.readexactly(length)
        if b0 & 0x0F == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


async def test_a_peer_that_never_answers_pings_is_closed_1001_and_others_stay(make_server):
    server = await make_server(server__websocket_ping_interval_seconds=0.2,
                               server__websocket_ping_timeout_seconds=0.2)
    _, cookie = await server.user_session("alice")
    reader, writer = await raw_upgrade(server, cookie)
    alive = await server.connect(cookie)  # Tornado's client answers pings by itself
    code, reason = await asyncio.wait_for(read_close(reader), 10)
    assert (code, reason) == (1001, "Heartbeat timeout")
    writer.close()
    await alive.assert_nothing_pending()
    assert len(server.connection_ids()) == 1


async def test_an_internal_error_closes_1011_and_the_server_serves_on(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    victim = await server.connect(cookie)
    bystander = await server.connect(cookie)
    core = server.service.core
    real = core.receive_frame
    victim_id = min(core.hub.connections)

    def broken(conn_id, frame, now):  # fault injection: a bug in our own message handling
        if conn_id == victim_id:
            raise RuntimeError("boom")
        return real(conn_id, frame, now)

    core.receive_frame = broken
    await victim.send({"type": "ping"})
    assert await victim.closed() == (1011, "Internal server error")
    await bystander.assert_nothing_pending()


async def test_a_resume_from_before_a_restart_is_not_taken_for_a_recovery(io_loop, tmp_path):
    first = await start_server(tmp_path, seq_base=None)  # production offsets: start time in ms
    try:
        user, cookie = await first.user_session("alice")
        first.publish(position(user.user_id))
        client = await first.connect(cookie)
        await client.subscribe("positions")
        old_seq = (await client.expect("snapshot"))["seq"]
    finally:
        await first.stop()

    later = time.time() + 60  # the same users database, a new process a minute later
    second = await start_server(tmp_path, seq_base=None, clock=lambda: later)
    try:
        for n in range(5):
            second.publish(position(user.user_id, price=f"{100 + n}.00"))
        cookie = await second.login("alice")
        client = await second.connect(cookie)
        await client.subscribe("positions", resume_from=old_seq)
        resumed = await client.expect("info", "RESUMED")
        assert resumed["data"]["details"]["recovered"] is False
        snap = await client.expect("snapshot")
        assert snap["seq"] > old_seq
        assert snap["data"]["positions"][0]["currentPrice"] == "104.00"
    finally:
        await second.stop()


async def test_logging_in_again_closes_the_old_sessions_sockets_at_once(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    response = await server.fetch("/api/auth/login", "POST", {"username": "alice", "password": "correct horse battery"},
                                  cookie=cookie)
    assert response.code == 200
    assert await client.closed() == (1008, "Session expired")
