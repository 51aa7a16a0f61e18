"""alpaca-py's Broker API trade-events stream (SSE), run in a thread of its own: the only module
touching ``BrokerClient``'s internals.

Why a thread: ``BrokerClient.get_trade_events`` is a blocking generator over ``requests`` and
``sseclient-py``; it neither reconnects nor resumes, and it yields raw ``data`` strings. So the
thread runs the generator, hands each string to the loop (``call_soon_threadsafe``), and when the
stream ends or fails, reconnects after 1, 2, 4 ... s with ``since_id`` = the loop's cursor.

Why the socket is shut down rather than the response closed: ``Response.close()`` from another
thread waits for the buffered reader's lock, which the blocked read holds (it would hang the
loop). ``socket.shutdown`` wakes the read at once; the thread then closes the response itself.
A read timeout of ``silence_seconds`` ends a connection that went quiet (no event, no heartbeat).
The generator checks no HTTP status either: the session's adapter records the response, so a
refused key shows as ``unauthorized (HTTP 401)``, not as a silent empty stream.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any, Callable, Optional, Union

import requests
from alpaca.broker.requests import GetEventsRequest

from ..alpaca.sdk import StreamStatus, describe
from .rest import broker_client

log = logging.getLogger(__name__)

FIRST_RETRY = 1.0
CONNECT_TIMEOUT = 10.0


class _ResumeRequest(GetEventsRequest):
    """alpaca-py 0.44 types ``since_id`` as an integer (the legacy v1 ids); v2's are ULID text."""

    since_id: Optional[Union[int, str]] = None  # type: ignore[assignment]


class _StreamAdapter(requests.adapters.HTTPAdapter):
    """Records the streaming response (to shut its socket from the loop) and gives it timeouts."""

    def __init__(self, read_timeout: float, opened: Callable[[requests.Response], None]) -> None:
        super().__init__()
        self._timeout = (CONNECT_TIMEOUT, read_timeout)
        self._opened = opened

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["timeout"] = self._timeout
        response = super().send(request, *args, **kwargs)
        self._opened(response)
        return response


class TradeEventsReader:
    """Reads ``/{events_api}/events/trades`` in a daemon thread until ``stop()``.

    ``on_text(text)`` and the ``status`` changes run on the loop that called ``start()``;
    ``cursor()`` (called in the thread, at each connection) gives the ``since_id`` to resume from."""

    def __init__(self, key: str, secret: str, *, sandbox: bool, url: str, events_api: str,
                 status: StreamStatus, on_text: Callable[[str], None],
                 cursor: Callable[[], int | str | None], silence_seconds: float,
                 reconnect_max_seconds: float) -> None:
        self._client = broker_client(key, secret, sandbox=sandbox, url=url, api_version=events_api)
        self._secrets = (key, secret)
        adapter = _StreamAdapter(silence_seconds, self._opened)
        self._client._session.mount("http://", adapter)
        self._client._session.mount("https://", adapter)
        self._status = status
        self._on_text = on_text
        self._cursor = cursor
        self._backoff_max = reconnect_max_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the response, between the thread and stop()
        self._response: requests.Response | None = None
        self._open = False  # the current connection was answered 200
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="alpaca-broker-events", daemon=True)
        self._thread.start()

    async def stop(self, timeout: float) -> None:
        """Stop reading, from the loop without blocking it; returns once the thread ended (or
        ``timeout`` passed: then it is named in the log, and ends at its next read)."""
        self._stopping.set()
        with self._lock:
            _shut(self._response)
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, timeout)
            if thread.is_alive():
                log.warning("alpaca broker: the events thread is still running after stop")

    # --- the thread ---------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed under a thread that outlived stop()
            self._stopping.set()

    def _opened(self, response: requests.Response) -> None:
        with self._lock:
            self._response = response
            if self._stopping.is_set():
                _shut(response)
        if response.status_code == 200:
            self._open = True
            self._call(self._status.mark_connected)

    def _run(self) -> None:
        delay = FIRST_RETRY
        while not self._stopping.is_set():
            since = self._cursor()
            request = _ResumeRequest(since_id=since) if since is not None else None
            read, self._open = 0, False
            try:
                for text in self._client.get_trade_events(request):
                    if self._stopping.is_set():
                        break
                    read += 1
                    self._call(self._on_text, text)
                error = self._ended_why(read)
            except Exception as exc:  # a drop, a timeout, a refused connection: resume
                error = describe(exc, self._secrets)
            finally:
                self._close()
            if self._stopping.is_set():
                break
            if self._open:  # it was up: the next try is quick again
                delay = FIRST_RETRY
            self._call(self._status.mark_failed, error)
            log.warning("alpaca broker: events stream ended (%s); resuming in %.0f s", error, delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, self._backoff_max)
        self._call(self._status.mark_disconnected)

    def _ended_why(self, read: int) -> str:
        response = self._response
        status = response.status_code if response is not None else None
        if status is not None and status != 200:
            return describe(_HttpStatus(status), self._secrets)
        return "the server ended the stream" if read else "the server ended the stream before any event"

    def _close(self) -> None:
        with self._lock:
            response, self._response = self._response, None
        if response is not None:
            try:
                response.close()
            except Exception:  # already broken: nothing left to release
                pass


class _HttpStatus(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def _shut(response: requests.Response | None) -> None:
    """Wake a read blocked on ``response``'s socket (any thread may call it)."""
    if response is None:
        return
    try:
        sock = response.raw.connection.sock  # urllib3 2: the connection of a streaming response
        sock.shutdown(socket.SHUT_RDWR)
    except (AttributeError, OSError):
        pass
