"""WebSocket frames built once: a server text frame for a message that goes to many sockets, and
the empty ping. Server-to-client frames are unmasked, so the same bytes are valid on every
connection that did not negotiate permessage-deflate (``tornado_socket`` writes them)."""

from __future__ import annotations

import struct

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


def frame_text(frame: bytes) -> str:
    """The text payload of a frame built by ``text_frame``."""
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4 if length == 126 else 10
    return frame[start:].decode("utf-8")
