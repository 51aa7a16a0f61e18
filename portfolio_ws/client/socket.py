"""One connection attempt of ``PortfolioClient``: its Tornado WebSocket connection, the future of how it
ended (the close code, reason and the cause the server named just before), and the gate that drops
frames of a socket the client already gave up on. The client (connection.py) runs the attempts."""

from __future__ import annotations

import asyncio
from typing import Callable

from tornado.websocket import WebSocketClientConnection

from .. import constants as c
from ..constants import Close
from . import policy


class Socket:
    """One connection attempt: its Tornado connection and the future of how it ended. Frames of a
    socket the client already gave up on (pong timeout) are ignored."""

    def __init__(self, on_frame: Callable[[str | bytes], None]) -> None:
        self.on_frame = on_frame  # the client's message handler
        self.conn: WebSocketClientConnection | None = None
        self.ended: asyncio.Future[Close] = asyncio.get_event_loop().create_future()
        self.cause: c.CloseCause | None = None  # named by the server's error just before its close

    def on_message(self, raw: str | bytes | None) -> None:
        if raw is None:
            conn = self.conn
            code = conn.close_code if conn is not None else None
            reason = conn.close_reason if conn is not None else None
            self.end(Close(code or policy.ABNORMAL_CLOSURE, reason or "", self.cause if code else None))
        elif not self.ended.done():
            self.on_frame(raw)

    def end(self, close: Close) -> None:
        if not self.ended.done():
            self.ended.set_result(close)
