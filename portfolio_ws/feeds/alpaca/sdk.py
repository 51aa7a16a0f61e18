"""alpaca-py adapted to a running event loop: the only module touching the SDK's internals.

Why internals (alpaca-py is pinned to 0.44 in setup.py): the SDK's public ``run()`` is
``asyncio.run`` and fails inside Tornado's loop; ``stop()`` and ``subscribe_*()`` on a running
stream block on ``run_coroutine_threadsafe(...).result()`` and deadlock on the loop thread.
So streams are started with ``create_task(stream._run_forever())``, stopped with
``task.cancel()`` then ``await stream.close()``, and the data stream is re-subscribed by
editing its handler table and awaiting its own ``_send_subscribe_msg`` on the loop.
The subclasses also report their connection state to a ``StreamStatus`` (for ``health()``)
and call ``on_connected`` after every (re)connection, so the feed can re-sync over REST.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, Iterable, Sequence

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from alpaca.trading.stream import TradingStream

from ...core.wire import epoch_timestamp

log = logging.getLogger(__name__)


def iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None else epoch_timestamp(epoch)

Handler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Credentials:
    """An API key pair, or an OAuth access token (Alpaca Connect: ``oauth_token``, key and secret
    empty). The trading stream and REST take either; the market-data stream only key pairs."""

    user_id: str
    key: str
    secret: str = ""
    oauth_token: str = ""

    def __repr__(self) -> str:  # never print a secret, even in a traceback's locals
        return f"Credentials(user_id={self.user_id!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.key, self.secret, self.oauth_token) if s)


class StreamStatus:
    """One stream's state as ``health()`` shows it. ``clock`` gives epoch seconds."""

    def __init__(self, clock: Callable[[], float], on_connected: Callable[[], object] | None = None,
                 on_failed: Callable[[], object] | None = None) -> None:
        self._clock = clock
        self._on_connected = on_connected
        self._on_failed = on_failed
        self.connected = False
        self.connects = 0
        self.last_event_at: float | None = None
        self.error: str | None = None

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def mark_connected(self) -> None:
        self.connected = True
        self.connects += 1
        self.error = None
        if self._on_connected is not None:
            self._on_connected()

    def mark_failed(self, error: str) -> None:
        self.connected = False
        self.error = error
        if self._on_failed is not None:
            self._on_failed()

    def mark_disconnected(self) -> None:
        self.connected = False

    def mark_event(self) -> None:
        self.last_event_at = self._clock()

    def as_dict(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "lastEventAt": iso_or_none(self.last_event_at),
            "reconnects": self.reconnects,
            "error": self.error,
        }


_HTTP_ERRORS = {
    401: "unauthorized (HTTP 401)",
    403: "forbidden (HTTP 403)",
    406: "connection limit exceeded (HTTP 406)",
    429: "rate limited (HTTP 429)",
}


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A short, secret-free account of a connection or REST failure, for logs and health."""
    status: Any = None
    if isinstance(exc, APIError):
        status = exc.status_code
    else:  # websockets' rejected upgrades, legacy (status_code) and new (response.status_code)
        status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        text = _HTTP_ERRORS.get(status, f"HTTP {status}")
    elif isinstance(exc, ValueError):  # the SDK's handshake refusals: bad keys, 406, ...
        text = f"refused: {exc}"[:200]
    else:
        text = f"{type(exc).__name__}: {exc}"[:200]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class _ShowsClosing:
    """Closing a stream whose socket was open shows it disconnected (``StreamStatus``, admin
    stats). Mixed in before the SDK's stream class, whose ``close`` it wraps."""

    _ws: Any
    _status: StreamStatus

    async def close(self) -> None:
        was_open = self._ws is not None
        try:
            await super().close()  # type: ignore[misc]
        finally:
            if was_open:
                self._status.mark_disconnected()


class LoopTradingStream(_ShowsClosing, TradingStream):
    """One account's ``trade_updates`` stream, run on the current loop, reporting to ``status``."""

    def __init__(self, creds: Credentials, *, paper: bool, url: str | None, status: StreamStatus,
                 handler: Handler) -> None:
        # The SDK annotates url_override as str but means Optional[str].
        super().__init__(creds.key, creds.secret, paper=paper, raw_data=True,
                         url_override=url or None)  # type: ignore[arg-type]
        self._status = status
        self._oauth_token = creds.oauth_token
        self._secrets = creds.secrets
        # Before the task starts: the SDK opens no socket until a handler is set.
        self.subscribe_trade_updates(handler)

    async def _auth(self) -> None:
        """alpaca-py 0.44's TradingStream takes no OAuth token (its TradingClient does): with one,
        send Alpaca's OAuth form of the authenticate message and read the answer as the SDK does."""
        if not self._oauth_token:
            await super()._auth()
            return
        ws: Any = self._ws
        await ws.send(json.dumps({"action": "authenticate", "data": {"oauth_token": self._oauth_token}}))
        answer = json.loads(await ws.recv())
        if (answer.get("data") or {}).get("status") != "authorized":
            raise ValueError("failed to authenticate")

    async def _start_ws(self) -> None:
        try:
            await super()._start_ws()
        except Exception as exc:
            self._status.mark_failed(describe(exc, self._secrets))
            raise
        self._status.mark_connected()


async def halt(streams: Sequence[Any], tasks: Sequence["asyncio.Task[Any]"], timeout: float) -> None:
    """Stop ``streams`` and their ``tasks`` within ``timeout`` whatever the SDK does.

    Cancelling alone is not enough: on Python < 3.12 ``asyncio.wait_for`` swallows a cancel that
    lands as its awaited frame arrives, and the SDK's loops would run on. So the SDK's own stop
    flags are raised and the sockets closed too, which ends its loops either way."""
    for stream in streams:
        await stream.stop_ws()
    for task in tasks:
        task.cancel()
    for stream in streams:
        try:
            await stream.close()
        except Exception as exc:  # closing a broken socket must not stop closing the others
            log.debug("alpaca: error closing a stream: %s", describe(exc))
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("alpaca: a task ended with %s", describe(task.exception()))  # type: ignore[arg-type]
        if pending:
            log.warning("alpaca: %d task(s) still running after stop", len(pending))


class LoopStockDataStream(_ShowsClosing, StockDataStream):
    """The one shared stock data stream (Alpaca allows one connection), trades only.

    Credentials come from ``pick_credentials`` at every (re)connection: when one account's keys
    are refused (402) or its connection slot is taken (406), the next connection uses another's.
    """

    def __init__(self, *, feed: str, url: str | None, status: StreamStatus,
                 pick_credentials: Callable[[], Credentials],
                 credentials_failed: Callable[[Credentials], None], handler: Handler) -> None:
        super().__init__("", "", raw_data=True, feed=DataFeed(feed), url_override=url or None)
        self._status = status
        self._pick = pick_credentials
        self._credentials_failed = credentials_failed
        self._handler = handler
        self._creds: Credentials | None = None

    async def _auth(self) -> None:
        self._creds = self._pick()
        self._api_key, self._secret_key = self._creds.key, self._creds.secret
        await super()._auth()

    async def _start_ws(self) -> None:
        try:
            await super()._start_ws()
        except Exception as exc:
            secrets = (self._creds.key, self._creds.secret) if self._creds else ()
            self._status.mark_failed(describe(exc, secrets))
            if self._creds is not None and isinstance(exc, ValueError):
                self._credentials_failed(self._creds)
            raise
        self._status.mark_connected()

    async def _dispatch(self, msg: Any) -> None:
        if isinstance(msg, dict) and msg.get("T") == "error":
            self._status.error = f"{msg.get('msg')} ({msg.get('code')})"
        await super()._dispatch(msg)

    @property
    def user_id(self) -> str | None:
        """Whose keys the current connection uses."""
        return self._creds.user_id if self._creds else None

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._handlers["trades"])

    async def set_symbols(self, symbols: Iterable[str]) -> None:
        """Make the trade subscription exactly ``symbols``, on the loop, without blocking.

        While disconnected only the table changes: the SDK subscribes to the whole table after
        every (re)connection. A send that fails is left to that reconnection."""
        wanted = set(symbols)
        table = self._handlers["trades"]
        added = wanted - set(table)
        removed = sorted(set(table) - wanted)
        for symbol in added:
            table[symbol] = self._handler
        for symbol in removed:
            del table[symbol]
        if not (self._running and self._ws is not None):
            return
        try:
            if added:
                await self._send_subscribe_msg()
            if removed:
                await self._send_unsubscribe_msg("trades", removed)
        except Exception as exc:  # the reconnection re-subscribes from the table
            log.warning("data stream subscription change not sent: %s", describe(exc))


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Every request gets a timeout: the SDK sets none, and a hung call would hold a thread."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, *args, **kwargs)


def trading_client(creds: Credentials, *, paper: bool, url: str | None, timeout: float) -> TradingClient:
    """A REST client returning raw dicts (strings stay strings for ``Decimal``), no retries.

    The SDK retries 429/504 with blocking ``sleep(3)``; the feed's sync loop backs off on its
    own, so a rate-limited account just reports its error and tries again later."""
    if creds.oauth_token:
        client = TradingClient(oauth_token=creds.oauth_token, paper=paper, raw_data=True, url_override=url or None)
    else:
        client = TradingClient(creds.key, creds.secret, paper=paper, raw_data=True, url_override=url or None)
    client._retry = 0
    adapter = _TimeoutAdapter(timeout)
    client._session.mount("http://", adapter)
    client._session.mount("https://", adapter)
    return client


async def in_executor(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking SDK call on the default executor, never on the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def order_queries(after: datetime) -> Sequence[GetOrdersRequest]:
    """The two order queries of a sync: every open order, and orders closed since ``after``."""
    return (
        GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500),
        GetOrdersRequest(status=QueryOrderStatus.CLOSED, limit=500, after=after),
    )
