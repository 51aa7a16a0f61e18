"""Sending pre-framed WebSocket messages: one frame built per message, written to every socket
that receives it, without Tornado's per-write coroutine and task (the profile's top cost).

Server-to-client frames are unmasked and we never negotiate compression, so the same bytes are
valid on every connection. Ordering is kept: a socket with bytes already queued gets the frame
queued behind them; an idle one gets it sent at once.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from tornado.iostream import IOStream

if TYPE_CHECKING:
    from tornado.websocket import WebSocketHandler

_FIN_TEXT = 0x81
PING_FRAME = b"\x89\x00"  # FIN + ping, empty payload: the peer answers with a pong


def text_frame(payload: str) -> bytes:
    data = payload.encode("utf-8")
    length = len(data)
    if length < 126:
        return struct.pack("!BB", _FIN_TEXT, length) + data
    if length < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, length) + data
    return struct.pack("!BBQ", _FIN_TEXT, 127, length) + data


SENT = 0     # handed to the kernel in full
QUEUED = 1   # (partly) waiting in Tornado's buffer: check the consumer isn't stalled
CLOSED = 2   # the connection is closing or gone: nothing written


def frame_text(frame: bytes) -> str:
    """The text payload of a frame built by ``text_frame``."""
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4 if length == 126 else 10
    return frame[start:].decode("utf-8")


def send_ping(handler: "WebSocketHandler") -> None:
    """A protocol-level ping; the peer's pong reaches ``on_pong``."""
    protocol = handler.ws_connection
    if protocol is None or protocol.is_closing():
        return
    if getattr(protocol, "_compressor", None) is not None:
        handler.ping(b"")
    else:
        send_frame(handler, PING_FRAME)


def send_frame(handler: "WebSocketHandler", frame: bytes) -> int:
    """Write ``frame`` to the handler's socket; returns SENT, QUEUED or CLOSED."""
    protocol = handler.ws_connection
    if protocol is None or protocol.is_closing():
        return CLOSED
    stream = getattr(protocol, "stream", None)
    if stream is None or stream.closed():
        return CLOSED
    if getattr(protocol, "_compressor", None) is not None:
        # permessage-deflate keeps a compression context per socket: the shared frame can't be
        # used; Tornado compresses it for this socket.
        handler.write_message(frame_text(frame))
        return QUEUED
    if type(stream) is IOStream and not stream.writing():
        try:
            sent = stream.socket.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            return CLOSED  # the peer is gone; Tornado notices on its next read
        if sent == len(frame):
            return SENT
        frame = frame[sent:]
    stream.write(frame)  # queued behind what's pending; Tornado silences the future on close
    return QUEUED
