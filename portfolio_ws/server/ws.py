"""``/ws/portfolio``: the WebSocket handler. Authenticates on upgrade, then only relays frames
between Tornado and the service."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tornado.httputil import HTTPHeaders
from tornado.websocket import WebSocketHandler

from .. import constants as c
from .peers import origin_allowed
from .headers import Hardened
from .service import Service

log = logging.getLogger("portfolio_ws.ws")

# Put in place of the upgrade's headers once a socket is open; nothing reads or writes them again.
_NO_HEADERS = HTTPHeaders()


class PortfolioSocket(Hardened, WebSocketHandler):
    def initialize(self, service: Service) -> None:
        self.service = service
        self.conn_id: int | None = None
        self.user_id: str | None = None
        self._rate_limit_logged_at = -1.0
        self.closed_future: asyncio.Future[None] = asyncio.get_event_loop().create_future()

    def prepare(self) -> None:
        # The Origin rule is decided here, before Tornado's own check: since 6.6 Tornado admits the
        # server's own host and any "Sec-Fetch-Site: same-origin" upgrade even when the configured
        # allowlist leaves them out, and its default no longer compares Origin with Host.
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            log.info("websocket origin %r refused from %s", origin[:200], self.request.remote_ip)
            self.set_status(403)
            self.finish("Cross origin websockets not allowed")

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.request.headers.get("Host", ""), self.service.settings.server.allowed_origins)

    def get_compression_options(self) -> dict[str, Any] | None:
        # permessage-deflate (streaming.compression): ~90% fewer bytes, paid in memory per socket.
        if not self.service.settings.streaming.compression:
            return None
        return {"compression_level": 6, "mem_level": 5}

    async def open(self, *args: Any, **kwargs: Any) -> None:
        # Tornado holds on_message until open() returns, so nothing sent right after the
        # client's onopen is lost while the session lookup is in flight.
        # Small frames go out at once rather than waiting on Nagle for the previous one's ACK.
        self.set_nodelay(True)
        user_id = session_id = None
        slot = refusal = None
        try:
            user_id, session_id = await self._authenticate()
            if user_id is not None and self.ws_connection is not None and self.service.core.enabled \
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

    def on_pong(self, data: bytes) -> None:
        if self.conn_id is not None:
            self.service.heard_from(self.conn_id)

    def on_message(self, message: str | bytes) -> None:
        if self.conn_id is None:
            return
        stats = self.service.core.stats
        limited = stats.rate_limited
        try:
            self.service.receive_frame(self.conn_id, message)
        except Exception:
            log.exception("internal error handling a message on connection %s", self.conn_id)
            self.service.fail(self.conn_id)
        if stats.rate_limited > limited and time.monotonic() - self._rate_limit_logged_at >= 1.0:
            self._rate_limit_logged_at = time.monotonic()  # at most one line a second per connection
            log.warning("websocket conn-%d user=%s over the message rate limit", self.conn_id, self.user_id)

    def on_close(self) -> None:
        if self.conn_id is not None:
            if self.user_id is not None:
                log.info("websocket conn-%d closed user=%s code=%s", self.conn_id, self.user_id, self.close_code)
            self.service.detach(self.conn_id)
        if not self.closed_future.done():
            self.closed_future.set_result(None)


