"""A publisher for ``POST /api/v1/publish``: hand portfolio-ws events from your own server.

```python
from portfolio_ws.publish import Publisher, AsyncPublisher

with Publisher("http://127.0.0.1:5000", api_key) as pub:          # blocking (urllib)
    result = pub.publish([{"type": "trade", "userId": uid, "data": {...}}])
async with AsyncPublisher("http://127.0.0.1:5000", api_key) as pub:  # asyncio (Tornado's client)
    result = await pub.publish(events)
    answer = await pub.sync(user_id, {"account": {...}, "positions": [...], "orders": [...]})
```

Rules kept here: events are sent in batches of at most ``batch_size`` (the server's limit is 500);
an event without an ``id`` is given one (a UUID) BEFORE the first attempt, so every retry of a batch
re-sends the same ids and the server delivers nothing twice. A batch is retried (exponential
backoff, ``retries`` times) when it may not have been taken: no answer, 429 or a 5xx. A 4xx other
than 429 is the caller's mistake and raises ``PublishError`` at once. Per-item refusals are not
errors: they come back in ``PublishResult.rejected`` with the index into the events you passed.

Values: ``Decimal`` is sent as the wire's decimal string (``Decimal("1E+2")`` as ``"100"``), an aware
``datetime`` as RFC 3339; a NaN, an infinity or a naive ``datetime`` raises ``ValueError`` before
anything is sent (the server would refuse the whole batch as invalid JSON, or the item).

``sync(user_id, state)`` replaces one user's whole state (``PUT /api/v1/users/{userId}/portfolio``,
all or nothing) and returns the server's answer (``offset``, the counts). It is retried like a batch:
a sync sent twice leaves the same state (each one takes an offset and sends the user's sockets a
snapshot). An invalid state raises ``PublishError`` with ``errors``, every field's path and message.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

BATCH_SIZE = 500
RETRIES = 5
BACKOFF_SECONDS = 0.2  # doubled on each retry: 0.2, 0.4, 0.8, 1.6, 3.2 s
TIMEOUT_SECONDS = 30.0


class PublishError(Exception):
    """The server refused a whole batch (status and its message), or never answered after the retries."""

    def __init__(self, message: str, status: int | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []  # a refused sync's: [{"field": "positions[3].quantity", "message"}]


@dataclass
class PublishResult:
    accepted: list[dict[str, Any]] = field(default_factory=list)   # {"index", "id", "offset"}
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # already taken: not delivered again
    rejected: list[dict[str, Any]] = field(default_factory=list)   # {"index", "field", "message"}

    def _add(self, results: list[dict[str, Any]], start: int) -> None:
        for r in results:
            entry = {**r, "index": r["index"] + start}
            status = entry.pop("status")
            {"accepted": self.accepted, "duplicate": self.duplicates}.get(status, self.rejected).append(entry)


def with_ids(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events, each with an ``id`` (a new UUID where it had none), ready to send and re-send."""
    return [e if not isinstance(e, dict) or e.get("id") else {**e, "id": str(uuid.uuid4())} for e in events]


def _wire(value: Any) -> str:
    """``json.dumps``'s ``default``: what a Python program holds, as the wire takes it."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a decimal the wire takes (finite decimals only)")
        return format(value, "f")  # never an exponent: the wire's grammar has none
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no time zone (the wire takes RFC 3339 times)")
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> bytes:
    """The body sent: strict JSON (no NaN or Infinity), decimals and times as the wire writes them."""
    return json.dumps(value, allow_nan=False, default=_wire).encode()


def _retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


def _error(what: str, status: int, body: bytes) -> PublishError:
    errors: list[dict[str, Any]] = []
    try:
        answer = json.loads(body)
        message = answer["error"]["message"]
        errors = list(answer.get("errors", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    return PublishError(f"{what} refused: {status} {message}", status, errors)


class _Base:
    def __init__(self, url: str, api_key: str, *, batch_size: int = BATCH_SIZE, retries: int = RETRIES,
                 backoff: float = BACKOFF_SECONDS, timeout: float = TIMEOUT_SECONDS) -> None:
        if not 1 <= batch_size <= BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {BATCH_SIZE}")
        self.base = url.rstrip("/")
        self.url = self.base + "/api/v1/publish"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.batch_size, self.retries, self.backoff, self.timeout = batch_size, retries, backoff, timeout

    def _batches(self, events: Iterable[dict[str, Any]]) -> list[tuple[int, bytes]]:
        items = with_ids(events)
        return [(start, to_json(items[start:start + self.batch_size]))
                for start in range(0, len(items), self.batch_size)]

    def _sync_url(self, user_id: str) -> str:
        return f"{self.base}/api/v1/users/{urllib.parse.quote(user_id, safe='')}/portfolio"


class Publisher(_Base):
    """Blocking publisher (standard library HTTP): for scripts, workers and WSGI apps."""

    def publish(self, events: Iterable[dict[str, Any]]) -> PublishResult:
        result = PublishResult()
        for start, body in self._batches(events):
            result._add(list(self._send("POST", self.url, body)["results"]), start)
        return result

    def sync(self, user_id: str, state: dict[str, Any]) -> dict[str, Any]:
        """Replace the user's whole state; the server's answer (``offset``, counts, ``tradesKept``)."""
        return self._send("PUT", self._sync_url(user_id), to_json(state), "sync")

    def _send(self, method: str, url: str, body: bytes, what: str = "publish") -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            status: int | None = None
            try:
                request = urllib.request.Request(url, data=body, headers=self.headers, method=method)
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return dict(json.loads(response.read()))
            except urllib.error.HTTPError as exc:
                status = exc.code
                if not _retryable(status) or attempt == self.retries:
                    raise _error(what, status, exc.read()) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self.retries:
                    raise PublishError(f"{what} failed after {self.retries + 1} attempts: {exc}") from None
            time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class AsyncPublisher(_Base):
    """asyncio publisher (Tornado's HTTP client, a dependency already)."""

    def __init__(self, url: str, api_key: str, **options: Any) -> None:
        super().__init__(url, api_key, **options)
        from tornado.httpclient import AsyncHTTPClient

        self._client = AsyncHTTPClient(force_instance=True)

    async def publish(self, events: Iterable[dict[str, Any]]) -> PublishResult:
        result = PublishResult()
        for start, body in self._batches(events):
            result._add(list((await self._send("POST", self.url, body))["results"]), start)
        return result

    async def sync(self, user_id: str, state: dict[str, Any]) -> dict[str, Any]:
        """Replace the user's whole state; the server's answer (``offset``, counts, ``tradesKept``)."""
        return await self._send("PUT", self._sync_url(user_id), to_json(state), "sync")

    async def _send(self, method: str, url: str, body: bytes, what: str = "publish") -> dict[str, Any]:
        from tornado.httpclient import HTTPClientError

        for attempt in range(self.retries + 1):
            try:
                response = await self._client.fetch(url, method=method, headers=self.headers, body=body,
                                                     request_timeout=self.timeout)
                return dict(json.loads(response.body))
            except HTTPClientError as exc:
                if exc.code == 599:  # no answer (Tornado's code for a connection failure or timeout)
                    if attempt == self.retries:
                        raise PublishError(f"{what} failed after {self.retries + 1} attempts: {exc}") from None
                elif not _retryable(exc.code) or attempt == self.retries:
                    raise _error(what, exc.code, exc.response.body if exc.response else b"") from None
            except OSError as exc:
                if attempt == self.retries:
                    raise PublishError(f"{what} failed after {self.retries + 1} attempts: {exc}") from None
            await asyncio.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self._client.close()

    async def __aenter__(self) -> "AsyncPublisher":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
