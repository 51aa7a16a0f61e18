"""Every frame a client sends counts (issue 13): protocol pings, pongs and empty continuation frames
over the limit are not acted on and end in 1008; a byte budget beside the message budget; the
4 KiB message limit; compression negotiated only after authentication; bad deflate data closes
1007 quietly. Real server, raw frames over loopback, bounded in time."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import zlib

import pytest
import ujson
from tornado.websocket import WebSocketProtocol13, _WebSocketParams

from portfolio_ws.server.wsprotocol import BudgetedProtocol
from tests.rawws import CLOSE, CONTINUATION, PING, PONG, TEXT, RawPeer, client_frame

DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate\r\n"


async def pong_times(client, until: asyncio.Future) -> list[float]:
    """Another user's JSON ping round trips (ms) until ``until`` is done."""
    times = []
    while not until.done():
        started = time.perf_counter()
        await client.send({"type": "ping"})
        await client.expect("pong")
        times.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)  # pacing: a ping every 20 ms while the flood runs, not a wait for anything
    return times


async def read_to_close(peer: RawPeer, timeout: float) -> tuple[tuple[int, str], list[tuple[int, bytes]]]:
    frames = []
    while True:
        opcode, payload = await peer.read_frame(timeout, answer_pings=False)
        if opcode == CLOSE:
            return (struct.unpack("!H", payload[:2])[0], payload[2:].decode()), frames
        frames.append((opcode, payload))


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_protocol_ping_flood_is_closed_1008_within_6_s_and_others_are_served(make_server):
    server = await make_server()  # the defaults: 100 frames/s, closed after 5 s over
    _, mallory_cookie = await server.user_session("mallory")
    _, bob_cookie = await server.user_session("bob")
    bob = await server.connect(bob_cookie)
    attacker = await RawPeer.connect(server.port, mallory_cookie)
    assert (await attacker.read_frame())[0] == TEXT  # CONNECTED
    started = time.monotonic()
    flood = asyncio.ensure_future(attacker.flood(client_frame(PING, b"")))
    closed = asyncio.ensure_future(read_to_close(attacker, timeout=10))
    bob_times = await pong_times(bob, closed)
    (code, reason), frames = await closed
    flood.cancel()
    sent = await flood
    elapsed = time.monotonic() - started
    attacker.close()
    assert (code, reason) == (1008, "Rate limit exceeded") and elapsed < 6.5, (code, reason, elapsed)
    pongs = sum(1 for opcode, _ in frames if opcode == PONG)
    # answered: the burst plus the rate while over it, not the tens of thousands sent
    assert pongs <= 100 + 100 * elapsed + 10 and sent > 5 * pongs, (pongs, sent)
    errors = [ujson.loads(p) for op, p in frames if op == TEXT]
    codes = [e["data"]["code"] for e in errors]
    assert codes[-1] == "RATE_LIMIT_EXCEEDED"  # the close's cause, announced
    assert set(codes[:-1]) == {"RATE_LIMITED"} and len(codes) - 1 <= elapsed + 1, codes
    bob_times.sort()
    assert bob_times[int(len(bob_times) * 0.99) - 1] < 200, bob_times[-5:]  # figures: benchmarks/abuse_frames.py
    await bob.assert_nothing_pending()


@pytest.mark.parametrize("name, opener, frame", [
    ("pongs", None, client_frame(PONG, b"x")),
    ("empty continuation frames", client_frame(TEXT, b"", fin=False), client_frame(CONTINUATION, b"", fin=False)),
    ("unsolicited pings with payload", None, client_frame(PING, b"p" * 125)),
])
@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_floods_of_any_frame_kind_are_counted_and_closed(make_server, name, opener, frame):
    server = await make_server(limits__rate_limit_close_after_seconds=1)
    _, cookie = await server.user_session("mallory")
    attacker = await RawPeer.connect(server.port, cookie)
    await attacker.read_frame()  # CONNECTED
    if opener is not None:
        attacker.writer.write(opener)
    started = time.monotonic()
    flood = asyncio.ensure_future(attacker.flood(frame))
    (code, reason), _ = await read_to_close(attacker, timeout=10)
    flood.cancel()
    assert (code, reason) == (1008, "Rate limit exceeded"), name
    assert time.monotonic() - started < 3.5, name
    attacker.close()


async def test_the_byte_budget_refuses_large_messages_past_32_kib_a_second(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    big = ujson.dumps({"type": "ping", "pad": "x" * 3900})  # under the 4 KiB message limit
    for _ in range(20):  # 78 KB at once: 8 fit the second's budget
        await client.send(big)
    replies = [await client.recv() for _ in range(9)]
    assert [m["type"] for m in replies[:8]] == ["pong"] * 8
    assert replies[8]["data"]["code"] == "RATE_LIMITED"
    assert replies[8]["data"]["details"] == {"limitPerSecond": 100, "bytesPerSecond": 32768}
    await client.assert_nothing_pending()  # small messages still fit as the budget refills


async def test_client_messages_over_4_kib_close_1009(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    fits = '{"type":"ping","pad":"' + "x" * (4096 - 24) + '"}'
    assert len(fits) == 4096
    await client.send(fits)
    await client.expect("pong")
    await client.send(fits + " ")
    assert await client.closed() == (1009, "message too big")


async def test_compression_is_negotiated_only_with_a_valid_session(make_server):
    server = await make_server(streaming__compression=True)
    _, cookie = await server.user_session("alice")
    stranger = await RawPeer.connect(server.port, None, headers=DEFLATE)
    assert "permessage-deflate" not in stranger.head.lower()  # no zlib state for an unauthenticated socket
    assert (await read_to_close(stranger, 10))[0] == (1008, "Authentication required")
    stranger.close()
    member = await RawPeer.connect(server.port, cookie, headers=DEFLATE)
    assert "sec-websocket-extensions: permessage-deflate" in member.head.lower()
    member.close()


async def test_data_that_does_not_inflate_closes_1007_with_one_quiet_log_line(make_server, caplog):
    caplog.set_level(logging.INFO)
    server = await make_server(streaming__compression=True)
    _, cookie = await server.user_session("alice")
    peer = await RawPeer.connect(server.port, cookie, headers=DEFLATE)
    inflate = zlib.decompressobj(wbits=-15)  # the server's messages, compressed in one context

    def text(payload: bytes) -> dict:
        return ujson.loads(inflate.decompress(payload + b"\x00\x00\xff\xff"))

    assert text((await peer.read_frame())[1])["data"]["code"] == "CONNECTED"
    deflate = zlib.compressobj(wbits=-15)
    good = deflate.compress(b'{"type":"ping"}') + deflate.flush(zlib.Z_SYNC_FLUSH)
    await peer.send(TEXT, good[:-4], rsv1=True)
    assert text((await peer.read_frame())[1])["type"] == "pong"
    for _ in range(3):  # garbage, and more behind it
        await peer.send(TEXT, b"\xff\xfe\xfd not deflate \x00" * 4, rsv1=True)
    (code, reason), frames = await read_to_close(peer, 10)
    assert (code, reason) == (1007, "Invalid compressed data")
    announced = [text(p) for op, p in frames if op == TEXT]
    assert announced[-1]["data"]["code"] == "INVALID_DATA"
    assert announced[-1]["data"]["details"] == {"closeCode": 1007}
    peer.close()
    lines = [r for r in caplog.records if "does not inflate" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "an error was logged"
    await (await server.connect(cookie)).assert_nothing_pending()


def test_the_tornado_internals_the_frame_budget_hooks_are_still_there():
    """A Tornado upgrade that moves these breaks the frame budget: fail here, loudly."""
    for name in ("_receive_frame", "_handle_message", "_receive_frame_loop", "is_closing", "close"):
        assert callable(getattr(WebSocketProtocol13, name, None)), name
    assert issubclass(BudgetedProtocol, WebSocketProtocol13)
    params = _WebSocketParams(ping_interval=None, ping_timeout=None, max_message_size=4096, compression_options=None)
    assert params.max_message_size == 4096
    assert "_wire_bytes_in" in WebSocketProtocol13.__init__.__code__.co_names
