"""Reading client frames under a budget: the one place that reaches into Tornado's WebSocket
reader (``WebSocketProtocol13._receive_frame`` / ``_handle_message``, ``_WebSocketParams``);
tests/behaviour/server/test_frame_budget.py fails loudly if a Tornado upgrade moves them.

Rules kept here (the limits themselves are ``core.ratelimit``'s):
- before each frame is read, the socket's ``ReadPacer`` may make the reader wait, so a flood is
  read at a bounded pace and the rest waits in the kernel, pushing back on the sender;
- every frame is reported to the handler: a protocol ping or pong over the limit is neither
  answered nor heard (Tornado answers pings itself, and a flood of them was never counted); a
  fragment of a longer message counts as one frame; a complete message counts when the handler
  receives it, with its size;
- permessage-deflate data that doesn't inflate closes 1007 with one INFO line (Tornado let the
  zlib error escape as an ERROR traceback); nothing more is read from that socket's messages.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import TYPE_CHECKING, Any, Optional

from tornado.websocket import WebSocketProtocol13, _WebSocketParams

from .. import constants as c
from ..core.ratelimit import ReadPacer
from ..settings import Settings

if TYPE_CHECKING:
    from asyncio import Future

    from .ws import PortfolioSocket

log = logging.getLogger("portfolio_ws.ws")

_PING, _PONG, _TEXT, _BINARY = 0x9, 0xA, 0x1, 0x2


def pacer_for(settings: Settings, now: float) -> ReadPacer:
    """Twice the limits' rates and bursts: over-limit frames are still read (and refused)."""
    limits = settings.limits
    return ReadPacer(2 * limits.messages_per_second, 2.0 * limits.rate_limit_burst,
                     2.0 * limits.bytes_per_second, 2.0 * limits.bytes_per_second, now)


class BudgetedProtocol(WebSocketProtocol13):
    handler: "PortfolioSocket"

    def __init__(self, handler: "PortfolioSocket", params: _WebSocketParams, pacer: ReadPacer) -> None:
        super().__init__(handler, mask_outgoing=False, params=params)
        self.pacer = pacer
        self._completed = False
        self._bad_data = False

    async def _receive_frame(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self.pacer.delay(loop.time())
        if wait > 0:
            await asyncio.sleep(wait)
        self._completed = False
        start = self._wire_bytes_in
        await super()._receive_frame()
        self.pacer.spend(self._wire_bytes_in - start, loop.time())
        if not self._completed and not self.is_closing():
            self.handler.on_frame(0)  # a fragment: one frame; its bytes count with the whole message

    def _handle_message(self, opcode: int, data: bytes) -> "Optional[Future[None]]":
        self._completed = True
        if opcode in (_PING, _PONG):
            if not self.handler.on_frame(len(data)):
                return None  # over the limit: not answered, not heard
        elif opcode in (_TEXT, _BINARY):
            if self._bad_data or self.server_terminated:
                return None  # closing: nothing more is acted on
            try:
                return super()._handle_message(opcode, data)
            except zlib.error:
                self._bad_data = True
                log.info("websocket conn-%s sent data that does not inflate: closing %d",
                         self.handler.conn_id, c.INVALID_DATA.code)
                self.handler.on_bad_data()
                return None
        return super()._handle_message(opcode, data)


def budgeted_protocol(handler: "PortfolioSocket", settings: Settings, compression: dict[str, Any] | None,
                      now: float) -> BudgetedProtocol | None:
    """What ``WebSocketHandler.get_websocket_protocol`` returns: our reader, or None (426) for a
    protocol version other than 13, as Tornado's own."""
    if handler.request.headers.get("Sec-WebSocket-Version") != "13":
        return None
    params = _WebSocketParams(ping_interval=handler.ping_interval, ping_timeout=handler.ping_timeout,
                              max_message_size=handler.max_message_size, compression_options=compression)
    return BudgetedProtocol(handler, params, pacer_for(settings, now))
