"""The ``Socket`` protocol on Tornado's ``WebSocketHandler``: the one module that touches Tornado's
private attributes. ``PRIVATE`` lists each one; tests/behaviour/server/test_tornado_socket.py checks them on
a live connection, so a Tornado upgrade that moves one fails there, loudly, not in production.

Why reach inside at all: one frame is built per message and written to every socket that gets
it, without Tornado's per-write coroutine and task (the profile's top cost, docs/performance.md).
Server-to-client frames are unmasked, so the same bytes are valid on every connection - unless
the socket negotiated permessage-deflate (``streaming.compression``): then Tornado compresses the
message for that socket with its own context. Ordering is kept: a socket with bytes already queued
gets the frame queued behind them; an idle one gets it sent at once.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import sys
import termios
from typing import Any

from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream
from tornado.websocket import WebSocketHandler

from .frames import PING_FRAME, frame_text
from .socket import Sent

# (owner, attribute, what we use it for). Owners: "stream" is the connection's IOStream,
# "protocol" its WebSocketProtocol13, "request" the upgrade's HTTPServerRequest, "handler" itself.
PRIVATE: tuple[tuple[str, str, str], ...] = (
    ("stream", "_total_write_index", "bytes written to the stream, with ..."),
    ("stream", "_total_write_done_index", "... bytes the kernel took: their difference is unsent"),
    ("protocol", "_compressor", "set when permessage-deflate was negotiated: no shared frames then"),
    ("request", "_cookies", "the parsed cookies, dropped once the socket is open"),
    ("handler", "_headers", "the response headers, dropped once the socket is open"),
)

# Put in place of the upgrade's headers once a socket is open; nothing reads or writes them again.
_NO_HEADERS = HTTPHeaders()


class TornadoSocket(WebSocketHandler):
    """A ``WebSocketHandler`` that is a ``Socket``; subclasses add the application's handling."""

    closed_future: "asyncio.Future[None]"

    def _stream(self) -> IOStream | None:
        protocol = self.ws_connection
        if protocol is None or protocol.is_closing():
            return None
        stream: IOStream | None = getattr(protocol, "stream", None)
        return None if stream is None or stream.closed() else stream

    def _compressed(self) -> bool:
        return getattr(self.ws_connection, "_compressor", None) is not None

    def send_frame(self, frame: bytes) -> Sent:
        stream = self._stream()
        if stream is None:
            return Sent.CLOSED
        if self._compressed():
            # permessage-deflate keeps a compression context per socket: the shared frame can't be
            # used; Tornado compresses it for this socket.
            self.write_message(frame_text(frame))
            return Sent.QUEUED
        if type(stream) is IOStream and not stream.writing():
            try:
                sent = stream.socket.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                return Sent.CLOSED  # the peer is gone; Tornado notices on its next read
            if sent == len(frame):
                return Sent.SENT
            frame = frame[sent:]
        stream.write(frame)  # queued behind what's pending; Tornado silences the future on close
        return Sent.QUEUED

    def send_ping(self) -> None:
        if self._stream() is None:
            return
        if self._compressed():
            self.ping(b"")
        else:
            self.send_frame(PING_FRAME)

    def unsent_bytes(self) -> int:
        """Tornado's buffer plus the kernel's send queue (SIOCOUTQ: unsent and unacknowledged), so
        the slow-consumer budget means what it says."""
        stream = getattr(self.ws_connection, "stream", None)
        if stream is None:
            return 0
        pending: int = stream._total_write_index - stream._total_write_done_index
        try:
            queued = fcntl.ioctl(stream.socket.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            pending += int.from_bytes(queued, sys.byteorder, signed=True)
        except (OSError, AttributeError, ValueError):
            pass  # not Linux, or the socket is gone: Tornado's own buffer is what we know
        return pending

    def cap_send_buffer(self, size: int) -> None:
        """SO_SNDBUF (streaming.send_buffer_bytes; 0: the kernel's default): what the kernel may hold
        for a reader that stopped reading, counted in the slow-consumer budget (``unsent_bytes``)."""
        stream = getattr(self.ws_connection, "stream", None)
        if size and stream is not None and not stream.closed():
            try:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            except OSError:
                pass  # the peer is gone already; Tornado notices

    def abort(self) -> None:
        stream = getattr(self.ws_connection, "stream", None)
        if stream is not None:
            stream.close()

    def drop_upgrade_state(self) -> None:
        """Let go of what Tornado keeps per socket from the HTTP upgrade and never uses again: the
        request's headers and parsed cookies, the response headers, the template UI namespace:
        fewer objects per open socket for the garbage collector to visit, and less memory
        (docs/performance.md, change 5 and "Memory per idle connection", has the figures)."""
        self.request.headers = _NO_HEADERS
        self.request.__dict__.pop("_cookies", None)
        self._headers = _NO_HEADERS
        self.ui = None  # type: ignore[assignment]


def private_owners(handler: TornadoSocket) -> dict[str, Any]:
    """The objects ``PRIVATE`` names, for an open socket (the test reads each attribute on them)."""
    protocol = handler.ws_connection
    return {"stream": getattr(protocol, "stream", None), "protocol": protocol,
            "request": handler.request, "handler": handler}
