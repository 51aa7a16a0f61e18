"""Hostile input over a real socket: the same tagged hostile frames as the engine fuzz (a smaller,
derandomized run), plus what only the wire can carry: oversized and fragmented messages, invalid
UTF-8, broken framing, control frames, floods. The server answers each as documented, drops
broken peers, and a bystander is served throughout."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import threading
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from tests.builders import position
from tests.harness import start_server
from tests.hostile import hostile_frames
from tests.rawws import BINARY, CLOSE, PING, PONG, TEXT, RawPeer, client_frame
from tests.fuzzing import CASES, FUZZ, check_reply, decode

SENTINEL = '{"type":"ping","sentinel":true}'


class BlockingPeer:
    """A raw WebSocket peer over a blocking socket, for a synchronous hypothesis test."""

    def __init__(self, port: int, cookie: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall((f"GET /ws/portfolio HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           f"Sec-WebSocket-Version: 13\r\nCookie: session={cookie}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the server")
            data += chunk
        return data

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(client_frame(opcode, payload))

    def message(self) -> dict[str, Any]:
        while True:
            b0, b1 = self._exactly(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._exactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._exactly(8))
            payload = self._exactly(length)
            opcode = b0 & 0x0F
            if opcode == PING:
                self.send(PONG, payload)
            elif opcode == CLOSE:
                raise ConnectionError(f"close frame {payload!r}")
            else:
                assert opcode == TEXT, opcode
                return decode(payload.decode("utf-8"))

    def dropped(self) -> bool:
        """True once the server has closed the connection (reads end)."""
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (ConnectionError, socket.timeout):
            return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def threaded_server(tmp_path_factory: Any) -> Any:
    """A real server on its own IOLoop thread, so a synchronous hypothesis test can talk to it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    async def setup() -> Any:
        return await start_server(tmp_path_factory.mktemp("fuzz-socket"),
                                  {"limits.connections_per_user": 50, "limits.total_connections": 200})

    server = run(setup())
    alice, cookie = run(server.user_session("alice"))
    yield server, cookie, run
    run(server.stop())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.mark.slow
@settings(FUZZ, max_examples=150)
@given(frames=st.lists(hostile_frames(), min_size=1, max_size=6))
def test_hostile_frames_over_a_real_socket_get_their_documented_replies(threaded_server, frames):
    server, cookie, _ = threaded_server
    peer = BlockingPeer(server.port, cookie)
    try:
        assert peer.message()["data"]["code"] == "CONNECTED"
        for frame, tag in frames:
            if isinstance(frame, bytes):
                peer.send(BINARY, frame)
            else:
                try:
                    payload = frame.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate: invalid UTF-8 on the wire
                    peer.send(TEXT, frame.encode("utf-8", "surrogatepass"))
                    assert peer.dropped(), "a text frame of invalid UTF-8 must end the connection"
                    CASES["socket frames"] += 1
                    return
                peer.send(TEXT, payload)
            peer.send(TEXT, SENTINEL.encode())
            reply = [peer.message()]
            if reply[0]["type"] == "pong":  # the frame was itself a ping: the sentinel's pong follows
                reply.append(peer.message())
            while reply[-1]["type"] != "pong" or len(reply) == 1 and tag == ("pong", None):
                reply.append(peer.message())
            check_reply(tag, reply[:-1])
            CASES["socket frames"] += 1
    finally:
        peer.close()
    CASES["socket examples"] += 1


# ---- what only the wire can carry ----------------------------------------------------------
async def hostile_peer(server: Any, cookie: str) -> RawPeer:
    peer = await RawPeer.connect(server.port, cookie)
    opcode, payload = await peer.read_frame()
    assert json.loads(payload)["data"]["code"] == "CONNECTED"
    return peer


async def is_dropped(peer: RawPeer) -> bool:
    """The server ended the connection without a close frame (RFC 6455 "fail the connection")."""
    try:
        data = await asyncio.wait_for(peer.reader.read(), 10)
    except ConnectionError:
        return True
    return b"\x88" not in data[:1]


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_wire_level_abuse_ends_only_the_abusers_connection(make_server, caplog):
    caplog.set_level(logging.WARNING)
    server = await make_server()
    alice, cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    bystander = await server.connect(bob_cookie)
    await bystander.subscribe("positions")
    await bystander.expect("snapshot")

    # over 64 KiB in one frame, or across fragments: 1009. Tornado reads the header, sends the close
    # and drops the connection at once: a peer still sending the rest may see a reset instead.
    for fragments in ([b'"' + b"x" * 70_000 + b'"'], [b'{"type":"ping","pad":"' + b"x" * 40_000, b"x" * 40_000 + b'"}']):
        peer = await hostile_peer(server, cookie)
        frames = b"".join(client_frame(TEXT if i == 0 else 0, part, fin=i == len(fragments) - 1)
                          for i, part in enumerate(fragments))
        peer.writer.write(frames[:-len(fragments[-1]) + 10])  # the last frame's header, not all its payload
        await peer.writer.drain()
        (code, reason), _ = await peer.read_until_close()
        assert (code, reason) == (1009, "message too big")
        peer.close()
    peer = await hostile_peer(server, cookie)
    peer.writer.write(client_frame(TEXT, b"x" * 200_000))
    try:
        (code, reason), _ = await peer.read_until_close()
        assert (code, reason) == (1009, "message too big")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    peer.close()

    # a message in three fragments with a ping between them is one message
    peer = await hostile_peer(server, cookie)
    for opcode, part, fin in ((TEXT, b'{"type":', False), (PING, b"hi", True), (0, b'"pi', False), (0, b'ng"}', True)):
        peer.writer.write(client_frame(opcode, part, fin=fin))
    opcode, payload = await peer.read_frame()  # RawPeer answers pings; the server's pong is a frame too
    if opcode == PONG:
        assert payload == b"hi"
        opcode, payload = await peer.read_frame()
    assert json.loads(payload)["type"] == "pong"
    peer.close()

    # broken framing: each ends that connection and nothing else
    for raw in (client_frame(TEXT, b'{"type": "\xff\xfe"}'),          # invalid UTF-8
                client_frame(0x3, b"reserved opcode"),                  # reserved data opcode
                client_frame(0x9, b"x" * 200),                          # control frame over 125 bytes
                client_frame(PING, b"fragmented ping", fin=False),      # fragmented control frame
                client_frame(0, b"continues nothing"),                  # continuation without a start
                bytes([0xC1]) + client_frame(TEXT, b"{}")[1:],          # reserved bit set
                client_frame(TEXT, b"{", fin=False) + client_frame(TEXT, b"}")):  # new message mid-message
        peer = await hostile_peer(server, cookie)
        peer.writer.write(raw)
        await peer.writer.drain()
        assert await is_dropped(peer), raw[:20]
        peer.close()

    # a close frame with a reason that isn't UTF-8, and a flood then a silent disconnect
    peer = await hostile_peer(server, cookie)
    peer.writer.write(client_frame(CLOSE, struct.pack("!H", 4000) + b"\xff\xfe"))
    await peer.writer.drain()
    await asyncio.wait_for(peer.reader.read(), 10)
    peer.close()
    peer = await hostile_peer(server, cookie)
    peer.writer.write(client_frame(TEXT, b'{"type":"ping"}') * 500)
    await peer.writer.drain()
    started, codes = asyncio.get_running_loop().time(), []
    while "RATE_LIMITED" not in codes:
        opcode, payload = await peer.read_frame()
        codes.append(json.loads(payload)["data"].get("code"))
    pongs = len(codes) - 1  # a burst of 100 (plus what refilled meanwhile at 100/s), then the notice
    assert codes[:pongs] == [None] * pongs and 100 <= pongs <= 100 + 100 * (asyncio.get_running_loop().time() - started)
    peer.writer.transport.abort()

    server.publish(position(bob.user_id, price="101.00"))
    assert (await bystander.expect("position_update"))["data"]["currentPrice"] == "101.00"
    await bystander.assert_nothing_pending()
    await server.until(lambda: len(server.connection_ids()) == 1)  # every abuser is gone from the server
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
