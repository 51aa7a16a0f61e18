"""The accept layer: every Tornado internal the HTTP edge relies on lives here (tests/behaviour/server/
test_accept.py fails loudly when a Tornado upgrade moves one).

What it adds to Tornado's HTTPServer, for connections that are not yet authenticated WebSockets:
- its own accept loop: at the file limit (EMFILE/ENFILE, or no kernel memory) it stops accepting for
  ``server.accept_pause_seconds`` and tries again, with one log line per episode and at most one per
  10 s while it lasts; Tornado's own loop retries at once and logs a traceback each time;
- the pending-connection caps (``gate.PendingGate``) and the idle timeout (no byte of a request);
- the header and body timeouts (Tornado's ``idle_connection_timeout``, really a header timeout, and
  ``body_timeout``);
- the request-body limit of each route, checked on ``Content-Length`` as soon as the head is in:
  413 before one byte of the body is read (Tornado would buffer up to 100 MiB first); a chunked body
  is counted as it arrives and refused with the same 413 at the byte that crosses the limit (Tornado
  would answer a bare 400), none of it past the limit handed on.
And at start: the file limit raised to the hard limit, the listen backlog.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import logging
import resource
import socket
import sys
import termios
import time
from typing import Any, Awaitable, Callable

from tornado import httputil, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.netutil import bind_sockets

from ..bus.watched import Conditions
from ..settings import ServerSettings
from .headers import SECURITY_HEADERS
from .gate import PendingGate
from .peers import TrustedProxies

log = logging.getLogger("portfolio_ws.accept")

ACCEPTS_PER_WAKEUP = 128  # as Tornado: others get the loop between batches
# accept() errors that mean "out of a resource": pause, don't spin.
OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
PAUSE_LOG_SECONDS = 10.0
SUMMARY_SECONDS = 10.0
LINGER_SECONDS = 2.0  # after a 413: read and drop what the client already sent, so it sees the answer
LINGER_BYTES = 1 << 20
SOMAXCONN = "/proc/sys/net/core/somaxconn"


def raise_file_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (each connection is a file). Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. an infinite hard limit the kernel caps lower
            log.warning("cannot raise the file limit from %d to %d: %s", soft, hard, exc)
    return soft, hard


def kernel_somaxconn() -> int | None:
    try:
        with open(SOMAXCONN) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def listen_sockets(server: ServerSettings, reuse_port: bool = False) -> list[socket.socket]:
    """The listening sockets with ``server.listen_backlog``; a warning when the kernel caps it lower."""
    cap = kernel_somaxconn()
    if cap is not None and cap < server.listen_backlog:
        log.warning("listen backlog %d is capped at %d by net.core.somaxconn: raise it (sysctl -w "
                    "net.core.somaxconn=%d) or a reconnect storm can see refused connects",
                    server.listen_backlog, cap, server.listen_backlog)
    return bind_sockets(server.port, server.host, backlog=server.listen_backlog, reuse_port=reuse_port)


def _refusal(status: str, body: bytes, extra: str = "") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in SECURITY_HEADERS.items())
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra}{head}\r\n"
            ).encode("latin-1") + body


BUSY = _refusal("503 Service Unavailable",
                b'{"error":{"code":"SERVICE_UNAVAILABLE","message":"Too many connections; try again"}}',
                "Retry-After: 1\r\n")


class EdgeServer(HTTPServer):
    """Tornado's HTTPServer with the accept layer's limits; construct with ``edge=`` settings and
    ``body_limit=`` (request path -> largest body in bytes)."""

    def initialize(self, request_callback: Any, *, edge: ServerSettings,  # type: ignore[override]
                   body_limit: Callable[[str], int], **kwargs: Any) -> None:
        super().initialize(request_callback, idle_connection_timeout=edge.header_timeout_seconds,
                           body_timeout=edge.body_timeout_seconds, **kwargs)
        self.edge = edge
        self.body_limit = body_limit
        self.gate: PendingGate[HTTP1ServerConnection] = PendingGate(edge.pending_connections_per_address,
                                                                    edge.pending_connections)
        self.proxies = TrustedProxies.from_cidrs(edge.trusted_proxies)
        self._conditions = Conditions()  # what ``when`` awaits, re-checked as connections come and go
        self.idle_closed = self.too_large = self.accept_pauses = 0
        self._paused_since: float | None = None
        self._pause_logged_at = 0.0
        self._pauses_unlogged = 0
        self._sweeper: PeriodicCallback | None = None
        # At the total cap with nothing stalled to give up, accepting stops until a pending connection
        # ends: the listen backlog holds the rest (a reconnect storm waits there, nothing is refused).
        self._holding = False
        self._resumers: list[Callable[[], None]] = []
        # What the caps and timeouts did, logged as one line per SUMMARY_SECONDS, not a line each.
        self._refused_from: dict[str, int] = {}
        self._summarized = (0, 0)  # (evicted, idle_closed) at the last summary
        self._summary_at = time.monotonic()

    # --- accepting -------------------------------------------------------------------------------
    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)
        if self._sweeper is None:
            self._sweeper = PeriodicCallback(self._close_idle, 1000 * min(1.0, self.edge.idle_timeout_seconds / 2))
            self._sweeper.start()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
        super().stop()

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        """Tornado's add_accept_handler, except that running out of files pauses accepting."""
        loop = IOLoop.current()
        state = {"removed": False, "listening": True}

        def resume() -> None:
            if not state["removed"] and not state["listening"] and not self._holding:
                state["listening"] = True
                loop.add_handler(sock, on_readable, IOLoop.READ)

        def on_readable(fd: Any, events: int) -> None:
            for _ in range(ACCEPTS_PER_WAKEUP):
                if state["removed"]:
                    return
                if self._holding:
                    loop.remove_handler(sock)
                    state["listening"] = False
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    break
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in OUT_OF_RESOURCES:
                        raise
                    loop.remove_handler(sock)
                    state["listening"] = False
                    self._paused(exc.errno)
                    loop.call_later(self.edge.accept_pause_seconds, resume)
                    return
                self._resumed()
                self._handle_connection(connection, address)

        def remove() -> None:
            if state["listening"]:
                loop.remove_handler(sock)
            state["removed"] = True

        loop.add_handler(sock, on_readable, IOLoop.READ)
        self._resumers.append(resume)
        return remove

    def _paused(self, code: int) -> None:
        now = time.monotonic()
        self.accept_pauses += 1
        if self._paused_since is None:
            self._paused_since = now
            self._pause_logged_at = now
            log.warning("accepting paused: out of %s (%s); retrying every %.1fs",
                        "file descriptors" if code in (errno.EMFILE, errno.ENFILE) else "kernel memory",
                        errno.errorcode.get(code, code), self.edge.accept_pause_seconds)
        elif now - self._pause_logged_at >= PAUSE_LOG_SECONDS:
            log.warning("still at the file limit: %d accept pauses in the last %.0fs, %d pending connections",
                        self._pauses_unlogged + 1, now - self._pause_logged_at, len(self.gate))
            self._pause_logged_at, self._pauses_unlogged = now, 0
            return
        else:
            self._pauses_unlogged += 1

    def _resumed(self) -> None:
        if self._paused_since is not None:
            log.warning("accepting again after %.1fs at the file limit", time.monotonic() - self._paused_since)
            self._paused_since, self._pauses_unlogged = None, 0

    # --- pending connections ---------------------------------------------------------------------
    def when(self, condition: Callable[[], bool]) -> "asyncio.Future[None]":
        """Resolved once ``condition()`` holds, re-checked as each connection is taken in or ends
        (tests await the gate's count instead of polling it)."""
        return self._conditions.when(condition)

    def handle_stream(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        self._take(stream, address)
        self._conditions.changed()

    def _take(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = HTTP1ServerConnection(stream, self.conn_params, context)
        host = str(address[0]) if address else ""
        # Behind a trusted proxy every client has the proxy's address: only the total cap applies.
        admission = self.gate.admit(conn, host, time.monotonic(), per_address=not self._proxy(host),
                                    quiet=_nothing_unread)
        if not admission.admitted and admission.cap == "total":
            self.gate.force(conn, host, time.monotonic())
            if not self._holding:
                self._holding = True
                log.warning("%d pending connections (server.pending_connections) and none stalled: "
                            "accepting paused until one ends; new connections wait in the listen backlog",
                            len(self.gate))
        elif not admission.admitted:
            self._refused_from[host] = self._refused_from.get(host, 0) + 1  # summed up by _summary
            if self.ssl_options is None:
                try:
                    stream.socket.send(BUSY, socket.MSG_DONTWAIT)
                except OSError:
                    pass
            stream.close()
            return
        if admission.evict is not None:
            admission.evict.stream.close()
        self._connections.add(conn)
        conn.start_serving(self)

    def _proxy(self, host: str) -> bool:
        try:
            return self.proxies.trusts(ipaddress.ip_address(host)) if self.proxies.networks else False
        except ValueError:
            return False

    def on_close(self, server_conn: object) -> None:
        self.gate.release(server_conn)  # type: ignore[arg-type]
        self._connections.discard(server_conn)  # type: ignore[arg-type]
        if self._holding and len(self.gate) < self.edge.pending_connections:
            self._holding = False
            for resume in self._resumers:
                resume()
        self._conditions.changed()

    def _summary(self) -> None:
        now = time.monotonic()
        if now - self._summary_at < SUMMARY_SECONDS:
            return
        evicted, idle = self.gate.evicted - self._summarized[0], self.idle_closed - self._summarized[1]
        if self._refused_from:
            worst = max(self._refused_from, key=self._refused_from.__getitem__)
            log.warning("refused %d connection(s) 503 at the per-address pending cap in the last %.0fs "
                        "(most from %s: %d)", sum(self._refused_from.values()), now - self._summary_at,
                        worst, self._refused_from[worst])
        if evicted or idle:
            log.info("closed %d stalled connection(s) for new ones at a pending cap and %d idle one(s) "
                     "in the last %.0fs; %d pending", evicted, idle, now - self._summary_at, len(self.gate))
        self._refused_from = {}
        self._summarized = (self.gate.evicted, self.idle_closed)
        self._summary_at = now

    def _close_idle(self) -> None:
        """Close connections that have sent no byte of a request for ``server.idle_timeout_seconds``
        (a half-sent head is the header timeout's); and log what the caps did meanwhile."""
        self._summary()
        for conn in self.gate.waiting_since_before(time.monotonic() - self.edge.idle_timeout_seconds):
            stream = conn.stream
            if stream._read_buffer_size == 0:  # nothing of its next request has arrived
                self.idle_closed += 1
                self.gate.release(conn)
                stream.close()

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        self.gate.waiting(server_conn, time.monotonic())  # type: ignore[arg-type]
        inner = super().start_request(server_conn, request_conn)
        return _BodyGuard(self, server_conn, request_conn, inner)  # type: ignore[arg-type]


def _nothing_unread(conn: HTTP1ServerConnection) -> bool:
    """Nothing the client sent is waiting in the kernel for us to read (FIONREAD)."""
    try:
        unread = fcntl.ioctl(conn.stream.socket.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, AttributeError):
        return True  # closed meanwhile
    return int.from_bytes(unread, sys.byteorder) == 0


class _BodyGuard(httputil.HTTPMessageDelegate):
    """Sees each request head before the body is read: marks the connection busy and refuses a body
    over the route's limit with 413, a declared one before it is read, a chunked one at the byte that
    crosses the limit."""

    def __init__(self, server: EdgeServer, server_conn: HTTP1ServerConnection, request_conn: HTTP1Connection,
                 inner: httputil.HTTPMessageDelegate) -> None:
        self.server, self.server_conn, self.request_conn, self.inner = server, server_conn, request_conn, inner
        self.refused = False
        self.limit = 0
        self.received = 0

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        self.server.gate.busy(self.server_conn)
        assert isinstance(start_line, httputil.RequestStartLine)
        self.limit = self.server.body_limit(start_line.path.split("?", 1)[0])
        declared = headers.get("Content-Length", "").split(",")[0].strip()
        if declared.isdigit() and int(declared) > self.limit:
            stream = self.request_conn.detach()
            asyncio.ensure_future(self._refuse(stream))
            return None
        # Tornado refuses a chunked body whose chunk sizes add up past its limit with a bare 400 before
        # the chunk is read; with no limit of its own it hands each piece (at most its chunk_size) to
        # data_received, which counts them and answers 413 itself.
        self.request_conn.set_max_body_size(sys.maxsize if "Content-Length" not in headers else self.limit)
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > self.limit:
            self.inner.on_connection_close()  # drops what it holds of the body
            # Tornado's body reader awaits this: it answers, drops what follows for a moment and closes
            # the stream, and the reader then ends quietly on the closed stream.
            return self._refuse(self.request_conn.stream)
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()

    def _refuse(self, stream: iostream.IOStream) -> Awaitable[None]:
        self.refused = True
        self.server.too_large += 1
        body = (b'{"error":{"code":"PAYLOAD_TOO_LARGE","message":"Request body too large (at most %d bytes)"}}'
                % self.limit)
        return _answer_and_linger(stream, _refusal("413 Payload Too Large", body))


async def _answer_and_linger(stream: iostream.IOStream, response: bytes) -> None:
    """Send the refusal, stop sending, and drop (never keep) what the client sends for a moment, so
    its own close doesn't reset the connection before it has read the answer."""
    try:
        await stream.write(response)
        stream.socket.shutdown(socket.SHUT_WR)
        dropped, deadline = 0, time.monotonic() + LINGER_SECONDS
        while dropped < LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            dropped += len(await asyncio.wait_for(stream.read_bytes(65536, partial=True), left))
    except (iostream.StreamClosedError, asyncio.TimeoutError, OSError):
        pass
    finally:
        stream.close()
