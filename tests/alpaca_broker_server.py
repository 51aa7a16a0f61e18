"""The Broker API part of the local Alpaca (tests/alpaca_server.py): what alpaca-py's ``BrokerClient``
talks to. Every account of the server is an account of one broker partner, whose key (HTTP Basic)
reads them all:

- ``GET /v1/events/trades`` and ``/v2/events/trades``: a real SSE stream (``text/event-stream``,
  chunked, one ``data: {json}`` per event). Every trade update the server sends (``trade``,
  ``fill``, ``order_event``, ``push_trade_update``) is also a broker event, with ``account_id``,
  ``at`` and ``event_id`` (v1: an integer and ``event_ulid``; v2: a ULID). ``since_id`` replays
  from that event **inclusive** (the worst case a client must handle: it sees the event at its cursor
  again), then streams live.
- ``GET /v1/trading/accounts/{id}/account``, ``.../positions``, ``.../orders``, ``GET /v1/clock``.

Controls: ``drop()`` cuts every events connection as a network failure would, ``send_raw(text)``
sends a ``data:`` line of any text, ``refuse()`` answers 401; ``connected(n)`` awaits the n-th
events connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING, Any

import tornado.iostream
import tornado.web

if TYPE_CHECKING:
    from tests.alpaca_server import AlpacaTestServer, FakeAccount

BROKER_KEY = "CKBROKER000000000001"
BROKER_SECRET = "broker-secret-do-not-log"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(seq: int) -> str:
    """A 26-character ULID-shaped id that sorts as ``seq`` does (fixed width, Crockford base 32)."""
    digits = ""
    while seq:
        seq, rest = divmod(seq, 32)
        digits = _CROCKFORD[rest] + digits
    return "01JD" + digits.rjust(22, "0")


class BrokerPartner:
    """The broker partner's side of the server: its key, its event log and its SSE connections."""

    def __init__(self, server: AlpacaTestServer) -> None:
        self.server = server
        self.key, self.secret = BROKER_KEY, BROKER_SECRET
        self.refused = False
        self.log: list[dict[str, Any]] = []  # event i has seq i + 1
        self.conns: set[_EventsHandler] = set()
        self.connections = 0
        self.since_ids: list[str | None] = []  # what each connection asked to resume from

    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        return not self.refused and header == f"Basic {expected}"

    def account(self, account_id: str) -> FakeAccount | None:
        return next((a for a in self.server.accounts.values() if a.id == account_id), None)

    def record(self, key: str, data: dict[str, Any]) -> None:
        """A trade update of account ``key``, as a broker event to every events connection."""
        account = self.server.accounts[key]
        self.log.append({**data, "account_id": account.id, "at": data.get("timestamp")})
        for conn in list(self.conns):
            conn.send_event(len(self.log))

    def event_text(self, seq: int, version: str) -> str:
        event = dict(self.log[seq - 1])
        if version == "v1":
            event.update(event_id=seq, event_ulid=ulid(seq))
        else:
            event["event_id"] = ulid(seq)
        return json.dumps(event)

    def seq_of(self, since_id: str, version: str) -> int:
        if version == "v1":
            return int(since_id)
        return next((i for i in range(1, len(self.log) + 1) if ulid(i) == since_id), len(self.log) + 1)

    # --- controls -----------------------------------------------------------------------------
    def send_raw(self, text: str) -> None:
        for conn in list(self.conns):
            conn.send_text(text)

    def drop(self) -> int:
        conns = list(self.conns)
        for conn in conns:
            conn.cut()
        return len(conns)

    async def connected(self, count: int = 1) -> None:
        """Until the ``count``-th events connection is streaming."""
        await self.server.wait_for(lambda: self.connections >= count and self.conns,
                                   what=f"broker events connection #{count}")


class _EventsHandler(tornado.web.RequestHandler):
    def initialize(self, server: AlpacaTestServer, version: str) -> None:
        self.server = server
        self.broker: BrokerPartner = server.broker
        self.version = version
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def get(self) -> None:
        if not self.broker.authorized(self.request.headers.get("Authorization")):
            self.set_status(401)
            self.finish({"code": 40110000, "message": "request is not authorized"})
            return
        since = self.get_query_argument("since_id", None)
        self.broker.since_ids.append(since)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        start = self.broker.seq_of(since, self.version) if since is not None else len(self.broker.log) + 1
        for seq in range(start, len(self.broker.log) + 1):
            self.write(f"data: {self.broker.event_text(seq, self.version)}\n\n")
        self.write(":heartbeat\n\n")  # the headers and replay go out now (a quiet stream is still open)
        self.broker.conns.add(self)
        self.broker.connections += 1
        try:
            await self.flush()
            self.server.conditions.changed()
            await self.done
        except tornado.iostream.StreamClosedError:
            pass
        finally:
            self.broker.conns.discard(self)
            self.server.conditions.changed()

    def send_event(self, seq: int) -> None:
        self.send_text(self.broker.event_text(seq, self.version))

    def send_text(self, text: str) -> None:
        try:
            self.write(f"data: {text}\n\n")
            self.flush()
        except tornado.iostream.StreamClosedError:
            self.on_connection_close()

    def cut(self) -> None:
        """Close the socket mid-stream (no final chunk): a dropped connection."""
        self.broker.conns.discard(self)
        self.request.connection.stream.close()  # type: ignore[attr-defined]
        self.on_connection_close()

    def on_connection_close(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class JsonHandler(tornado.web.RequestHandler):
    """Alpaca's JSON answers and errors (both REST flavours of the local Alpaca)."""

    def _fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish({"code": status * 100000, "message": message})

    def reply(self, body: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class BrokerRest(JsonHandler):
    """Basic auth with the broker key; ``account_id`` of the path picks the account (the answers
    themselves: ``rest_routes`` in tests/alpaca_server.py, one set for both REST flavours)."""

    def initialize(self, server: AlpacaTestServer) -> None:
        self.server = server
        self.account: FakeAccount | None = None

    def prepare(self) -> None:
        broker = self.server.broker
        account = broker.account(self.path_args[0]) if self.path_args else None
        key = account.key if account else "broker"
        self.server.rest_calls[(key, self.request.path.rsplit("/", 1)[-1])] += 1
        self.server.conditions.changed()
        failure = self.server._rest_failure(key)
        if not broker.authorized(self.request.headers.get("Authorization")):
            self._fail(401, "request is not authorized")
        elif failure is not None:
            self._fail(failure, "error")
        elif self.path_args and account is None:
            self._fail(404, "account not found")
        self.account = account


def events_routes(server: AlpacaTestServer) -> list[Any]:
    return [(r"/(v1|v2)/events/trades", _Versioned, {"server": server})]


class _Versioned(_EventsHandler):
    def initialize(self, server: AlpacaTestServer, version: str = "") -> None:  # type: ignore[override]
        super().initialize(server, version)

    async def get(self, version: str) -> None:  # type: ignore[override]
        self.version = version
        await super().get()
