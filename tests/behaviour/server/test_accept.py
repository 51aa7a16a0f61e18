"""server/accept.py and server/gate.py: timeouts, body limits and caps for connections that are not
yet authenticated WebSockets, over real sockets (the timeouts shortened so each test takes a second
or two; tests/process/reliability/test_edge_attacks.py runs the same attacks at the defaults)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import pytest
import ujson
from tornado.http1connection import HTTP1ServerConnection
from tornado.iostream import IOStream

from portfolio_ws.server import accept
from portfolio_ws.server.gate import STALLED_AFTER, PendingGate
from tests.harness import PASSWORD
from tests.rawhttp import closed_by_server

LOGIN = "/api/auth/login"
SHORT = {"server__idle_timeout_seconds": 0.5, "server__header_timeout_seconds": 1.0,
         "server__body_timeout_seconds": 1.0}


async def login_from(port: int, host: str, body: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    data = await closed_by_server(reader, 5)
    writer.close()
    return data


async def test_the_tornado_internals_the_accept_layer_uses_are_there(make_server):
    # accept.py relies on each of these; a Tornado upgrade that moves one fails here first.
    import socket

    from tornado.http1connection import HTTP1Connection
    from tornado.httpserver import _HTTPRequestContext  # noqa: F401

    server = await make_server()
    assert isinstance(server.http._sockets, dict) and isinstance(server.http._handlers, dict)
    assert isinstance(server.http._connections, set)
    assert callable(HTTP1Connection.detach) and callable(HTTP1Connection.set_max_body_size)
    assert callable(HTTP1ServerConnection.start_serving)
    left, right = socket.socketpair()
    stream = IOStream(left)
    assert stream._read_buffer_size == 0
    stream.close()
    right.close()


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_idle_and_half_sent_connections_are_closed_by_the_server(make_server):
    server = await make_server(**SHORT)
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    half = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    for _, writer in half:
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    started = time.monotonic()
    await asyncio.gather(*(closed_by_server(reader, 3) for reader, _ in idle + half))
    assert time.monotonic() - started < 2.5
    assert server.http.idle_closed >= 20
    for _, writer in idle + half:
        writer.close()


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_keep_alive_connection_is_closed_once_idle_but_not_while_used(make_server):
    server = await make_server(**SHORT)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    for _ in range(4):  # 4 requests 0.3 s apart: each resets the idle clock
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        await asyncio.sleep(0.3)  # the gap between requests is what is tested, not a wait for something
    assert await closed_by_server(reader, 3) == b""
    writer.close()


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_stalled_body_is_closed_after_the_body_timeout(make_server):
    server = await make_server(**SHORT)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"user")
    started = time.monotonic()
    await closed_by_server(reader, 4)
    assert 0.5 < time.monotonic() - started < 3
    writer.close()


@pytest.mark.parametrize("path,length", [(LOGIN, 100 * 1024 * 1024), (LOGIN, 4097), ("/api/health", 5000),
                                         ("/ws/portfolio", 10**12), ("/static/app.js", 2048), ("/nowhere", 99999)])
async def test_a_declared_body_over_the_limit_gets_413_before_it_is_read(make_server, path, length):
    server = await make_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % (path.encode(), length))
    answer = await closed_by_server(reader, 5)  # without one byte of the body sent
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"X-Content-Type-Options: nosniff" in answer and b"Connection: close" in answer
    assert ujson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "PAYLOAD_TOO_LARGE"
    writer.close()
    assert server.http.too_large == 1


async def send_chunked(port: int, path: str, chunks: list[bytes], head: bytes = b"") -> bytes:
    """A chunked POST of ``chunks``, each sent as one chunk, and everything the server answered until
    it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%s"
                 b"Transfer-Encoding: chunked\r\n\r\n" % (path.encode(), head))
    try:
        for chunk in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
    except ConnectionError:
        pass
    answer = await closed_by_server(reader, 5)
    writer.close()
    return answer


@pytest.mark.parametrize("path,limit,headers", [
    (LOGIN, 4096, b""), ("/api/v1/users", 4096, b"Authorization: Bearer x\r\n"),
    ("/api/v1/publish", 1024 * 1024, b"Authorization: Bearer x\r\n"), ("/api/health", 1024, b"")])
@pytest.mark.parametrize("pieces", [10, 1])  # the limit crossed by the 10th chunk, or by one big chunk
async def test_a_chunked_body_over_the_limit_gets_the_same_413(make_server, path, limit, headers, pieces):
    server = await make_server()
    piece = b"x" * (limit // 9 if pieces == 10 else limit + 1)
    answer = await send_chunked(server.port, path, [piece] * pieces, headers)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"X-Content-Type-Options: nosniff" in answer and b"Connection: close" in answer
    error = ujson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE" and str(limit) in error["message"]
    assert server.http.too_large == 1


async def test_a_chunked_body_within_the_limit_still_works(make_server):
    server = await make_server()
    server.add_user("alice")
    body = ujson.dumps({"username": "alice", "password": PASSWORD}).encode()
    answer = await send_chunked(server.port, LOGIN, [body[:10], body[10:]], b"Connection: close\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert server.http.too_large == 0


async def test_a_login_within_the_limit_still_works(make_server):
    server = await make_server()
    server.add_user("alice")
    answer = await login_from(server.port, "127.0.0.1", ujson.dumps({"username": "alice", "password": PASSWORD}).encode())
    assert answer.startswith(b"HTTP/1.1 200"), answer


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_at_the_address_cap_the_oldest_idle_connection_gives_way(make_server):
    server = await make_server(server__pending_connections_per_address=10, server__pending_connections=20)
    server.add_user("alice")
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(10)]
    await asyncio.wait_for(_until(server, lambda: len(server.http.gate) == 10), 5)
    await asyncio.sleep(STALLED_AFTER)  # their silence must last this long before they count as stalled
    # One more from the same address: the oldest idle one is closed for it, and it is served.
    answer = await login_from(server.port, "127.0.0.1", ujson.dumps({"username": "alice", "password": PASSWORD}).encode())
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert await closed_by_server(idle[0][0], 3) == b""
    # Another address isn't held by this one's connections at all.
    answer = await login_from(server.port, "127.0.0.2", ujson.dumps({"username": "alice", "password": PASSWORD}).encode())
    assert answer.startswith(b"HTTP/1.1 200"), answer
    for _, writer in idle:
        writer.close()


def _until(server: Any, condition: Callable[[], bool]) -> "asyncio.Future[None]":
    """The accept layer's ``when``: re-checked as each connection is taken in or ends."""
    return server.http.when(condition)


# ---- the gate, without sockets ----------------------------------------------------------------
def test_the_gate_gives_up_only_stalled_connections_and_refuses_an_address_only_for_busy_ones():
    gate: PendingGate[str] = PendingGate(per_address=2, total=4)
    assert gate.admit("a1", "A", 0).admitted and gate.admit("a2", "A", 1).admitted
    gate.busy("a1")
    third = gate.admit("a3", "A", 1 + STALLED_AFTER)  # a1 is busy: a2, stalled, gives way
    assert third.admitted and third.evict == "a2" and third.cap == "address"
    # Over the address's count but nothing stalled and only one busy: unread yet, let in.
    over = gate.admit("a4", "A", 2 + STALLED_AFTER, quiet=lambda key: False)
    assert over.admitted and over.evict is None and gate.count("A") == 3
    gate.busy("a3")
    refused = gate.admit("a5", "A", 3 + STALLED_AFTER, quiet=lambda key: False)
    assert not refused.admitted and refused.cap == "address"  # two busy: the address's cap
    assert gate.admit("b1", "B", 10).admitted  # another address: the total is 4
    gate.busy("b1")
    total = gate.admit("c1", "C", 10, quiet=lambda key: False)
    assert not total.admitted and total.cap == "total"  # the caller stops accepting
    gate.force("c1", "C", 10)
    assert len(gate) == 5
    gate.waiting("a1", 11)
    admitted = gate.admit("c2", "C", 11 + STALLED_AFTER)
    assert admitted.evict == "a1" and admitted.cap == "total"  # the oldest, waiting again, stalled
    for key in ("a3", "a4", "b1", "c1", "c2"):
        gate.release(key)
    assert len(gate) == 0 and gate.count("A") == 0 and gate.evicted == 2 and gate._busy == {}


def test_the_file_limit_is_raised_to_the_hard_limit():
    import resource

    soft, hard = accept.raise_file_limit()
    assert soft == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_behind_a_trusted_proxy_only_the_total_cap_applies():
    gate: PendingGate[int] = PendingGate(per_address=2, total=4)
    assert all(gate.admit(i, "10.0.0.1", 0, per_address=False).evict is None for i in range(4))
    assert gate.admit(4, "10.0.0.1", 4, per_address=False).cap == "total"


async def test_connections_from_a_trusted_proxy_are_not_held_to_the_address_cap(make_server):
    server = await make_server(server__pending_connections_per_address=2, server__pending_connections=50,
                               server__trusted_proxies=["127.0.0.1/32"])
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(10)]
    await asyncio.wait_for(_until(server, lambda: len(server.http.gate) == 10), 5)
    assert server.http.gate.evicted == 0
    for _, writer in held:
        writer.close()


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_at_the_total_cap_with_nothing_stalled_new_connections_wait_in_the_backlog(make_server):
    # (from a trusted proxy, so that only the total cap applies)
    server = await make_server(server__pending_connections_per_address=5, server__pending_connections=5,
                               server__trusted_proxies=["127.0.0.1/32"])
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
    await asyncio.wait_for(_until(server, lambda: len(server.http.gate) == 5), 5)
    request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    sixth = await asyncio.open_connection("127.0.0.1", server.port)
    sixth[1].write(request)
    assert (await closed_by_server(sixth[0], 5)).startswith(b"HTTP/1.1 200")  # kept, then accepting stops
    seventh = await asyncio.open_connection("127.0.0.1", server.port)  # the kernel completes it: the backlog
    seventh[1].write(request)
    with pytest.raises(asyncio.TimeoutError):  # not accepted while the cap is full
        await asyncio.wait_for(seventh[0].read(1), 0.5)
    idle[0][1].close()  # one pending connection ends: accepting resumes, the waiting one is served
    assert (await closed_by_server(seventh[0], 5)).startswith(b"HTTP/1.1 200")
    for _, writer in idle[1:] + [sixth, seventh]:
        writer.close()
