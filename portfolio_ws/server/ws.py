"""``/ws/portfolio``: the WebSocket handler. Authenticates before the upgrade (so compression is
offered to signed-in users only), then only relays frames between Tornado and the stream (the
service, seen through ``Stream``); frames are read under the budget of ``wsprotocol``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Protocol


from .. import constants as c
from ..auth.sessions import SessionStore
from ..constants import Close
from ..settings import Settings
from ..slots import ConnectionSlots
from .headers import Hardened
from .peers import origin_allowed
from .socket import Socket
from .tornado_socket import TornadoSocket
from .wsprotocol import BudgetedProtocol, budgeted_protocol

log = logging.getLogger("portfolio_ws.ws")


class Stream(Protocol):
    """What a socket handler uses of the stream (the service)."""

    stopping: bool

    @property
    def enabled(self) -> bool: ...

    async def user_ready(self, user_id: str) -> None: ...

    def attach(self, socket: Socket, user_id: str | None, session_id: str | None,
               refusal: Close | None = None, slot: str | None = None) -> int: ...

    def is_open(self, conn_id: int) -> bool: ...

    def is_attached(self, conn_id: int) -> bool: ...

    def rate_limited(self) -> int: ...

    def receive_frame(self, conn_id: int, frame: str | bytes) -> None: ...

    def receive_control(self, conn_id: int, nbytes: int) -> bool: ...

    def heard_from(self, conn_id: int) -> None: ...

    def fail(self, conn_id: int) -> None: ...

    def refuse_data(self, conn_id: int) -> None: ...

    def detach(self, conn_id: int) -> None: ...


class PortfolioSocket(Hardened, TornadoSocket):
    def initialize(self, stream: Stream, sessions: SessionStore, slots: ConnectionSlots,
                   clock: Callable[[], float], settings: Settings) -> None:
        self.stream = stream
        self.sessions = sessions
        self.slots = slots
        self.clock = clock
        self.config = settings
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
        # The session is looked up before the upgrade answers, so that compression (a zlib compressor
        # and decompressor a socket: docs/performance.md, "Memory per idle connection") is negotiated
        # for signed-in users only. Frames can't arrive before open().
        try:
            self._identity = await self._authenticate()
        except Exception:  # a store that failed (Redis, the platform): 1011 after the upgrade
            log.exception("websocket admission failed from %s", self.request.remote_ip)
            self._admission_failed = True

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.request.headers.get("Host", ""), self.config.server.allowed_origins)

    def get_compression_options(self) -> dict[str, Any] | None:
        # permessage-deflate (streaming.compression): far fewer bytes, paid in memory per socket
        # (docs/performance.md has both);
        # never for an upgrade without a valid session (it is closed 1008 at once anyway).
        if not self.config.streaming.compression or self._identity[0] is None:
            return None
        return {"compression_level": 6, "mem_level": 5}

    def get_websocket_protocol(self) -> BudgetedProtocol | None:  # type: ignore[override]
        return budgeted_protocol(self, self.config, self.get_compression_options(),
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
            elif user_id is not None and self.ws_connection is not None and self.stream.enabled \
                    and not self.stream.stopping:
                slot, refusal = await self.slots.acquire(user_id)  # cluster-wide limits
                if refusal is None:  # cluster mode: the user's state as every node has it, first
                    await self.stream.user_ready(user_id)
        except Exception:  # a store that failed (Redis, the platform): 1011, the client comes back
            log.exception("websocket admission failed from %s", self.request.remote_ip)
            refusal = c.INTERNAL_ERROR_CLOSE
        if self.ws_connection is None:  # the peer went away meanwhile
            if slot is not None:
                await self.slots.release(slot)
            return
        self.conn_id = self.stream.attach(self, user_id, session_id, refusal, slot)
        self.user_id = user_id
        if self.stream.is_open(self.conn_id):
            self.cap_send_buffer(self.config.streaming.send_buffer_bytes)
            log.info("websocket conn-%d connected user=%s from %s", self.conn_id, user_id, self.request.remote_ip)
        elif user_id is not None:
            log.info("websocket conn-%d refused user=%s from %s", self.conn_id, user_id, self.request.remote_ip)
        self.drop_upgrade_state()

    async def _authenticate(self) -> tuple[str | None, str | None]:
        """(user id, session id) of the session cookie, or (None, None)."""
        cookie = self.get_cookie(c.SESSION_COOKIE)
        if cookie:
            session = await self.sessions.lookup(cookie, self.clock())
            if session is not None:
                return session.user_id, cookie
        log.info("websocket auth failed from %s", self.request.remote_ip)
        return None, None

    def on_pong(self, data: bytes) -> None:
        if self.conn_id is not None:
            self.stream.heard_from(self.conn_id)

    def on_frame(self, nbytes: int) -> bool:
        """A protocol ping or pong, or a fragment, arrived (wsprotocol): False to ignore it."""
        if self.conn_id is None:
            return False
        return self._counted(lambda conn_id: self.stream.receive_control(conn_id, nbytes))

    def on_bad_data(self) -> None:
        """Data that does not inflate (wsprotocol): 1007, its cause announced like every close."""
        if self.conn_id is not None and self.stream.is_attached(self.conn_id):
            self.stream.refuse_data(self.conn_id)
        else:
            self.close(c.INVALID_DATA.code, c.INVALID_DATA.reason)

    def on_message(self, message: str | bytes) -> None:
        if self.conn_id is None:
            return
        self._counted(lambda conn_id: self.stream.receive_frame(conn_id, message))

    def _counted(self, work: Any) -> bool:
        """Run ``work(conn_id)``; log (at most once a second) when it was over the rate limit."""
        conn_id = self.conn_id
        assert conn_id is not None
        limited = self.stream.rate_limited()
        result = True
        try:
            result = work(conn_id) is not False
        except Exception:
            log.exception("internal error handling a message on connection %s", conn_id)
            self.stream.fail(conn_id)
        if self.stream.rate_limited() > limited and time.monotonic() - self._rate_limit_logged_at >= 1.0:
            self._rate_limit_logged_at = time.monotonic()  # at most one line a second per connection
            log.warning("websocket conn-%d user=%s over the message rate limit", conn_id, self.user_id)
        return result

    def on_close(self) -> None:
        if self.conn_id is not None:
            if self.user_id is not None:
                log.info("websocket conn-%d closed user=%s code=%s", self.conn_id, self.user_id, self.close_code)
            self.stream.detach(self.conn_id)
        if not self.closed_future.done():
            self.closed_future.set_result(None)


