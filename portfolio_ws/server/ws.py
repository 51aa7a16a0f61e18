"""``/ws/portfolio``: the WebSocket handler. Authenticates before the upgrade (so compression is
offered to signed-in users only), then only relays frames between Tornado and the service; frames
are read under the budget of ``wsprotocol``."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from tornado.httputil import HTTPHeaders
from tornado.websocket import WebSocketHandler

from .. import constants as c
from .peers import origin_allowed
from .headers import Hardened
from .service import Service
from .wsprotocol import BudgetedProtocol, budgeted_protocol

log = logging.getLogger("portfolio_ws.ws")

# Put in place of the upgrade's headers once a socket is open; nothing reads or writes them again.
_NO_HEADERS = HTTPHeaders()


class PortfolioSocket(Hardened, WebSocketHandler):
    def initialize(self, service: Service) -> None:
        self.service = service
        self.conn_id: int | None = None
        self.user_id: str | None = None
        self._rate_limit_logged_at = -1.0
        self._identity: tuple[str | None, str | None] = (None, None)
        self._admission_failed = False
        self.closed_future: asyncio.Future[None] = asyncio.get_event_loop().create_future()

    async def prepare(self) -> None:
        # The Origin rule is decided here, before Tornado's own check: since 6.6 Tornado admits the
        # server's own host and any "Sec-Fetch-Site: same-origin" upgrade even when the configured
        # allowlist leaves them out, and its default no longer compares Origin with Host.
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            log.info("websocket origin %r refused from %s", origin[:200], self.request.remote_ip)
            self.set_status(403)
            self.finish("Cross origin websockets not allowed")
            return
        # The session is looked up before the upgrade answers, so that compression (~75 KB of zlib
        # state a socket) is negotiated for signed-in users only. Frames can't arrive before open().
        try:
            self._identity = await self._authenticate()
        except Exception:  # a store that failed (Redis, the platform): 1011 after the upgrade
            log.exception("websocket admission failed from %s", self.request.remote_ip)
            self._admission_failed = True

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.request.headers.get("Host", ""), self.service.settings.server.allowed_origins)

    def get_compression_options(self) -> dict[str, Any] | None:
        # permessage-deflate (streaming.compression): ~90% fewer bytes, paid in memory per socket;
        # never for an upgrade without a valid session (it is closed 1008 at once anyway).
        if not self.service.settings.streaming.compression or self._identity[0] is None:
            return None
        return {"compression_level": 6, "mem_level": 5}

    def get_websocket_protocol(self) -> BudgetedProtocol | None:  # type: ignore[override]
        return budgeted_protocol(self, self.service.settings, self.get_compression_options(),
                                 asyncio.get_running_loop().time())

    async def open(self, *args: Any, **kwargs: Any) -> None:
        # Tornado holds on_message until open() returns, so nothing sent right after the
        # client's onopen is lost while the session lookup is in flight.
        # Small frames go out at once rather than waiting on Nagle for the previous one's ACK.
        self.set_nodelay(True)
        user_id, session_id = self._identity
        slot = refusal = None
        try:
            if self._admission_failed:
                refusal = c.INTERNAL_ERROR_CLOSE
            elif user_id is not None and self.ws_connection is not None and self.service.core.enabled \
                    and not self.service.stopping:
                slot, refusal = await self.service.slots.acquire(user_id)  # cluster-wide limits
                if refusal is None:  # cluster mode: the user's state as every node has it, first
                    await self.service.user_ready(user_id)
        except Exception:  # a store that failed (Redis, the platform): 1011, the client comes back
            log.exception("websocket admission failed from %s", self.request.remote_ip)
            refusal = c.INTERNAL_ERROR_CLOSE
        if self.ws_connection is None:  # the peer went away meanwhile
            if slot is not None:
                await self.service.slots.release(slot)
            return
        self.conn_id = self.service.attach(self, user_id, session_id, refusal, slot)
        self.user_id = user_id
        if self.conn_id in self.service.core.hub.connections:
            self._cap_send_buffer()
            log.info("websocket conn-%d connected user=%s from %s", self.conn_id, user_id, self.request.remote_ip)
        elif user_id is not None:
            log.info("websocket conn-%d refused user=%s from %s", self.conn_id, user_id, self.request.remote_ip)
        self._drop_upgrade_state()

    def _drop_upgrade_state(self) -> None:
        """Let go of what Tornado keeps per socket from the HTTP upgrade and never uses again: the
        request's headers and parsed cookies, the response headers, the template UI namespace.
        Per open socket that is ~25 fewer objects for the garbage collector to visit and ~3 KB
        (docs/performance.md, memory per idle connection)."""
        self.request.headers = _NO_HEADERS
        self.request.__dict__.pop("_cookies", None)
        self._headers = _NO_HEADERS
        self.ui = None  # type: ignore[assignment]

    async def _authenticate(self) -> tuple[str | None, str | None]:
        """(user id, session id) of the session cookie, or (None, None)."""
        cookie = self.get_cookie(c.SESSION_COOKIE)
        if cookie:
            session = await self.service.sessions.lookup(cookie, self.service.clock())
            if session is not None:
                return session.user_id, cookie
        log.info("websocket auth failed from %s", self.request.remote_ip)
        return None, None

    def _cap_send_buffer(self) -> None:
        """SO_SNDBUF (streaming.send_buffer_bytes): what the kernel may hold for a reader that stopped
        reading, counted in the slow-consumer budget (``unsent_bytes``)."""
        size = self.service.settings.streaming.send_buffer_bytes
        stream = getattr(self.ws_connection, "stream", None)
        if size and stream is not None and not stream.closed():
            try:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            except OSError:
                pass  # the peer is gone already; Tornado notices

    def on_pong(self, data: bytes) -> None:
        if self.conn_id is not None:
            self.service.heard_from(self.conn_id)

    def on_frame(self, nbytes: int) -> bool:
        """A protocol ping or pong, or a fragment, arrived (wsprotocol): False to ignore it."""
        if self.conn_id is None:
            return False
        return self._counted(lambda conn_id: self.service.receive_control(conn_id, nbytes))

    def on_bad_data(self) -> None:
        """Data that does not inflate (wsprotocol): 1007, its cause announced like every close."""
        if self.conn_id is not None and self.conn_id in self.service.sockets:
            self.service.refuse_data(self.conn_id)
        else:
            self.close(c.INVALID_DATA.code, c.INVALID_DATA.reason)

    def on_message(self, message: str | bytes) -> None:
        if self.conn_id is None:
            return
        self._counted(lambda conn_id: self.service.receive_frame(conn_id, message))

    def _counted(self, work: Any) -> bool:
        """Run ``work(conn_id)``; log (at most once a second) when it was over the rate limit."""
        conn_id = self.conn_id
        assert conn_id is not None
        stats = self.service.core.stats
        limited = stats.rate_limited
        result = True
        try:
            result = work(conn_id) is not False
        except Exception:
            log.exception("internal error handling a message on connection %s", conn_id)
            self.service.fail(conn_id)
        if stats.rate_limited > limited and time.monotonic() - self._rate_limit_logged_at >= 1.0:
            self._rate_limit_logged_at = time.monotonic()  # at most one line a second per connection
            log.warning("websocket conn-%d user=%s over the message rate limit", conn_id, self.user_id)
        return result

    def on_close(self) -> None:
        if self.conn_id is not None:
            if self.user_id is not None:
                log.info("websocket conn-%d closed user=%s code=%s", self.conn_id, self.user_id, self.close_code)
            self.service.detach(self.conn_id)
        if not self.closed_future.done():
            self.closed_future.set_result(None)


