"""What the service needs of one open WebSocket: the ``Socket`` protocol.

The service writes the core's output through it and never sees Tornado; ``tornado_socket``
implements it (the only module that reaches into Tornado's internals).
"""

from __future__ import annotations

import asyncio
from enum import IntEnum
from typing import Protocol


class Sent(IntEnum):
    SENT = 0     # handed to the kernel in full
    QUEUED = 1   # (partly) waiting in the server's buffer: check the consumer isn't stalled
    CLOSED = 2   # the connection is closing or gone: nothing written


class Socket(Protocol):
    # Resolved once the socket has closed (the peer answered our close, or went away).
    closed_future: "asyncio.Future[None]"

    def send_frame(self, frame: bytes) -> Sent:
        """Write a ready text frame (``frames.text_frame``), in order behind anything queued."""

    def send_ping(self) -> None:
        """A protocol-level ping; the peer's pong comes back as ``Service.heard_from``."""

    def unsent_bytes(self) -> int:
        """Bytes written that the peer has not read yet (our buffer, not the kernel's)."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Send a close frame; ``closed_future`` resolves when the close completes."""

    def abort(self) -> None:
        """Drop the TCP connection now, without waiting for the peer's close frame."""
