"""``PortfolioClient``: the asyncio adapter around the sans-I/O pieces (``events``, ``state``,
``policy``). It owns the socket, the timers and the HTTP calls; every decision is theirs.

Rule 1: one connection attempt at a time, run by one task (``_run``): connect, subscribe (with
``resumeFrom`` once anything was applied), read until the socket ends, then ask ``policy`` whether
and when to try again.
Rule 2: messages are handled in Tornado's message callback, synchronously: decode, apply to the
local ``Portfolio``, then hand to the callbacks and iterators. Nothing per message is awaited.
Rule 3: the client never dies silently: it ends only on ``close()`` or on a close the policy table
says not to retry (by close code and the cause the server named first, never by reason text), and then iterators raise ``StreamClosed`` and ``wait_closed``
returns the close.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random as _random
import time
from typing import Any, AsyncIterator, Callable, Iterable, TypeVar, overload

import ujson
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketError, websocket_connect

from .. import constants as c
from ..constants import Close
from ..errors import UsageError
from . import http, policy
from .channels import checked, only
from .errors import ClientError, LoginFailed, StreamClosed
from .events import ClientEvent, Connected, Pong, ServerError, StatusChange, decode
from .policy import Staleness, Timings
from .socket import Socket
from .state import MAX_TRADES, Portfolio

log = logging.getLogger("portfolio_ws.client")

Callback = Callable[[Any], Any]
_E = TypeVar("_E")
_END = object()
OWN_CLOSE = Close(c.NORMAL_CLOSURE, "Client closed")
CONNECT_ERRORS = (OSError, HTTPClientError, WebSocketError, StreamClosedError, asyncio.TimeoutError)


class PortfolioClient:
    """One user's live portfolio stream.

    Give ``username`` and ``password`` (the client logs in over HTTP) or a ``session_id`` (the
    ``session`` cookie of an earlier login). Then ``await client.start()`` (or ``async with``), and
    either iterate (``async for event in client``) or register callbacks with ``on(...)``; the
    current state is always in ``client.portfolio``. ``random``, ``clock`` and ``timings`` are
    injectable for tests.
    """

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 session_id: str | None = None, channels: Iterable[str] = c.CHANNELS,
                 timings: Timings = Timings(), random: Callable[[], float] = _random.random,
                 clock: Callable[[], float] = time.monotonic, max_trades: int = MAX_TRADES) -> None:
        if session_id is None and (username is None or password is None):
            raise UsageError("PortfolioClient needs a session_id, or a username and a password")
        self.url = http.base_url(url)
        self.ws_url = http.websocket_url(url)
        self.username, self._password = username, password
        self.session_id = session_id
        self.user_id: str | None = None
        self.channels: list[str] = checked(channels)
        self.timings, self._random, self._clock = timings, random, clock
        self.portfolio = Portfolio(max_trades)
        self.status = "idle"
        self.connection_id: str | None = None
        self.last_close: Close | None = None   # the latest close of a socket, whatever its cause
        self.last_delay: float | None = None   # the latest wait before a reconnect
        self.connects = 0                      # sockets the server admitted (CONNECTED) so far
        self._last_heard: float | None = None
        self._listeners: list[tuple[tuple[type, ...] | None, Callback]] = []
        self._queues: list[asyncio.Queue[Any]] = []
        self._socket: Socket | None = None
        self._pong: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._terminal: Close | None = None
        self._final: Close | None = None
        self._done: asyncio.Future[Close] | None = None
        self._attempt = 0    # reconnects since the last admitted socket (the backoff exponent)
        self._failures = 0   # attempts in a row that were never admitted (polling starts at 10)
        self._poll_retries = 0  # socket retries since polling started

    # ---- lifecycle ---------------------------------------------------------------------------
    async def login(self) -> http.Login:
        """Log in with the username and password; raises ``LoginFailed`` or ``ClientError``."""
        if self.username is None or self._password is None:
            raise UsageError("login needs a username and a password")
        result = await http.login(self.url, self.username, self._password, self.timings.connect_timeout)
        self.session_id, self.user_id = result.session_id, result.user_id
        return result

    async def start(self) -> None:
        """Log in if needed, then connect in the background. Raises ``LoginFailed`` on bad credentials."""
        if self._task is not None:
            raise UsageError("the client was already started")
        if self.session_id is None:
            await self.login()
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        """Close the socket (1000) and stop reconnecting and polling. Iterators then end."""
        self._closing = True
        self._wake.set()
        sock = self._socket
        if sock is not None and sock.conn is not None and not sock.ended.done():
            sock.conn.close(OWN_CLOSE.code, OWN_CLOSE.reason)
            try:  # let the server see the close handshake, but never hang on a dead peer
                await asyncio.wait_for(asyncio.shield(sock.ended), self.timings.pong_timeout)
            except asyncio.TimeoutError:
                pass
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._finish(OWN_CLOSE, error=False)

    async def wait_closed(self) -> Close:
        """Wait until the client stopped for good; returns the close that stopped it."""
        return await asyncio.shield(self._done_future())

    def _done_future(self) -> asyncio.Future[Close]:
        if self._done is None:
            self._done = asyncio.get_event_loop().create_future()
            if self._final is not None:
                self._done.set_result(self._final)
        return self._done

    async def __aenter__(self) -> "PortfolioClient":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- consuming events --------------------------------------------------------------------
    # Overloads so a typed caller's callback is checked against the event type it asked for.
    @overload
    def on(self, callback: Callable[[ClientEvent], object], /) -> Callable[[], None]: ...
    @overload
    def on(self, event_type: type[_E], callback: Callable[[_E], object], /) -> Callable[[], None]: ...
    @overload
    def on(self, *types_and_callback: Any) -> Callable[[], None]: ...

    def on(self, *types_and_callback: Any) -> Callable[[], None]:
        """``on(PositionEvent, OrderEvent, fn)``: call ``fn(event)`` for those types; ``on(fn)``: for
        every event. ``fn`` runs in the message callback: return quickly (a coroutine it returns is
        scheduled as a task). Returns a function that removes the callback."""
        *types, callback = types_and_callback
        entry = (tuple(types) or None, callback)
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry) if entry in self._listeners else None

    def events(self) -> AsyncIterator[ClientEvent]:
        """An iterator over every event from now on. It ends after ``close()`` and raises
        ``StreamClosed`` when the server closed the stream for good."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        if self._final is not None:
            queue.put_nowait(_END)
        self._queues.append(queue)
        return self._iterate(queue)

    def __aiter__(self) -> AsyncIterator[ClientEvent]:
        return self.events()

    async def _iterate(self, queue: asyncio.Queue[Any]) -> AsyncIterator[ClientEvent]:
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    if self._terminal is not None:
                        raise StreamClosed(self._terminal)
                    return
                yield item
        finally:
            if queue in self._queues:
                self._queues.remove(queue)

    # ---- subscriptions -----------------------------------------------------------------------
    def subscribe(self, *channels: str) -> None:
        """Add channels (kept across reconnects); a snapshot of them follows."""
        added = [ch for ch in checked(channels) if ch not in self.channels]
        self.channels = [ch for ch in c.CHANNELS if ch in self.channels or ch in added]
        if added and self.status == "connected":
            self._send({"type": c.SUBSCRIBE, "channels": added})

    def unsubscribe(self, *channels: str) -> None:
        """Drop channels; their local state is forgotten."""
        removed = [ch for ch in checked(channels) if ch in self.channels]
        self.channels = [ch for ch in self.channels if ch not in removed]
        self.portfolio.drop(removed)
        if removed and self.status == "connected":
            self._send({"type": c.UNSUBSCRIBE, "channels": removed})

    # ---- queries -----------------------------------------------------------------------------
    @property
    def last_seq(self) -> int | None:
        """The offset of the last message applied: the next ``resumeFrom``."""
        return self.portfolio.seq

    @property
    def staleness(self) -> Staleness:
        """``live`` (a message, pong or poll under 5 s ago), ``delayed`` (under 30 s), ``stale``."""
        since = None if self._last_heard is None else self._clock() - self._last_heard
        return policy.staleness(since, self.timings)

    # ---- the connection loop -----------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._loop()
        except Exception as exc:  # a bug of ours must not leave iterators waiting forever
            log.exception("portfolio client stopped")
            self._terminal = Close(c.INTERNAL_ERROR, f"client error: {exc}")
        finally:
            self._stop_polling()
        if self._terminal is not None:
            self._finish(self._terminal, error=True)

    async def _loop(self) -> None:
        self._set_status("connecting")
        while not self._closing and self._terminal is None:
            close, admitted = await self._connect_once()
            self.last_close = close
            if self._closing or self._terminal is not None:
                return
            if not admitted:
                self._failures += 1
            step = policy.next_step(close.code, close.cause, failures=self._failures,
                                    polling=self._poller is not None, attempt=self._attempt,
                                    timings=self.timings, random=self._random, retries=self._poll_retries)
            if step.action == "stop":
                self._terminal = close
                return
            polling, delay = step.action == "poll", step.delay
            if polling:
                self._poll_retries += 1
            self._attempt += 1
            self.last_delay = delay
            self._set_status("polling" if polling else "reconnecting", close, delay)
            if polling and self._poller is None:
                self._poller = asyncio.ensure_future(self._poll())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _connect_once(self) -> tuple[Close, bool]:
        """One socket, from connect to close. Returns its close and whether the server admitted it."""
        assert self.session_id is not None
        request = HTTPRequest(self.ws_url, headers=http.cookie_header(self.session_id),
                              connect_timeout=self.timings.connect_timeout,
                              request_timeout=self.timings.connect_timeout)
        sock = Socket(self._on_message)
        self._socket = sock
        admitted_before = self.connects
        try:
            sock.conn = await websocket_connect(request, on_message_callback=sock.on_message)
        except CONNECT_ERRORS as exc:
            return Close(policy.ABNORMAL_CLOSURE, f"connect failed: {exc}"), False
        if self._closing:
            sock.conn.close(OWN_CLOSE.code, OWN_CLOSE.reason)
            return OWN_CLOSE, False
        if self.channels:  # sent at once: the server keeps messages that arrive during its auth
            subscribe: dict[str, Any] = {"type": c.SUBSCRIBE, "channels": self.channels}
            if self.portfolio.seq is not None:
                subscribe["resumeFrom"] = self.portfolio.seq
            self._send(subscribe)
        heartbeat = asyncio.ensure_future(self._heartbeat(sock))
        try:
            close = await sock.ended
        finally:
            heartbeat.cancel()
            self.connection_id = None
        return close, self.connects > admitted_before

    async def _heartbeat(self, sock: Socket) -> None:
        """A JSON ping every ``ping_interval``; no pong within ``pong_timeout``: the socket is dead."""
        loop = asyncio.get_event_loop()
        while not sock.ended.done():
            await asyncio.sleep(self.timings.ping_interval)
            self._pong = loop.create_future()
            self._send({"type": c.PING})
            try:
                await asyncio.wait_for(self._pong, self.timings.pong_timeout)
            except asyncio.TimeoutError:
                log.info("no pong within %s s: reconnecting", self.timings.pong_timeout)
                sock.end(Close(policy.ABNORMAL_CLOSURE, "Pong timeout"))
                if sock.conn is not None:  # no waiting for a peer that isn't answering
                    sock.conn.close(c.GOING_AWAY, "Pong timeout")
                return

    # ---- messages ----------------------------------------------------------------------------
    def _on_message(self, raw: str | bytes) -> None:
        self._last_heard = self._clock()
        try:
            events = decode(raw)
        except (ValueError, KeyError, TypeError, ArithmeticError):
            log.warning("ignoring a malformed server message: %.200r", raw)
            return
        for event in events:
            if isinstance(event, Pong):
                if self._pong is not None and not self._pong.done():
                    self._pong.set_result(None)
                continue
            if isinstance(event, ServerError) and event.close_code is not None and self._socket is not None:
                self._socket.cause = policy.cause_of(event.code)  # the close that follows is for this cause
            if isinstance(event, Connected):
                self.connection_id = event.connection_id
                self.connects += 1
                self._attempt = self._failures = 0
                self._stop_polling()
                self._set_status("connected")
            self.portfolio.apply(event)
            self._dispatch(event)

    def _dispatch(self, event: ClientEvent) -> None:
        for types, callback in list(self._listeners):
            if types is None or isinstance(event, types):
                try:
                    result = callback(event)
                    if inspect.isawaitable(result):
                        asyncio.ensure_future(result)
                except Exception:
                    log.exception("event callback %r failed", callback)
        for queue in self._queues:
            queue.put_nowait(event)

    def _send(self, message: dict[str, Any]) -> None:
        sock = self._socket
        conn = sock.conn if sock is not None and not sock.ended.done() else None
        if conn is None:
            return
        try:
            conn.write_message(ujson.dumps(message)).add_done_callback(_retrieve)
        except (WebSocketClosedError, StreamClosedError):
            pass  # the read side sees the close and the loop reconnects

    # ---- polling -----------------------------------------------------------------------------
    async def _poll(self) -> None:
        """``GET /api/portfolio`` every ``poll_interval`` while the socket is unavailable."""
        assert self.session_id is not None
        first = True
        while True:
            try:
                snapshot = await http.fetch_portfolio(self.url, self.session_id, self.timings.connect_timeout)
            except LoginFailed as exc:
                self._terminal = Close(c.POLICY_VIOLATION, str(exc))
                self._wake.set()
                return
            except ClientError as exc:
                log.info("polling failed: %s", exc)
            else:
                self._last_heard = self._clock()
                if first or snapshot.seq != self.portfolio.seq:  # dispatched only when something changed
                    first = False
                    wanted = frozenset(self.channels)
                    snapshot = only(snapshot, wanted)
                    self.portfolio.apply(snapshot)
                    self._dispatch(snapshot)
            await asyncio.sleep(self.timings.poll_interval)

    def _stop_polling(self) -> None:
        self._poll_retries = 0
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    # ---- state -------------------------------------------------------------------------------
    def _set_status(self, status: str, close: Close | None = None, retry_in: float | None = None) -> None:
        self.status = status
        self._dispatch(StatusChange(status, close.code if close else None, close.reason if close else None,
                                    retry_in))

    def _finish(self, close: Close, error: bool) -> None:
        if self._final is not None:
            return
        self._final = close
        if not error:
            self._terminal = None
        self._set_status("closed", close)
        for queue in self._queues:
            queue.put_nowait(_END)
        if self._done is not None:
            self._done.set_result(close)


def _retrieve(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()  # a write to a socket that closed meanwhile: the reader handles it
