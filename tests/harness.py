"""A real portfolio-ws server on a real socket, for tests: users, login, WebSocket clients, and
publishing events through the same bus interface the feeds use (events from tests/builders.py).

Use the ``make_server`` fixture (tests/conftest.py): ``server = await make_server(**overrides)``
where overrides are dotted settings keys with ``__`` for the dot (``limits__total_connections=3``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import ujson
from argon2 import PasswordHasher
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.websocket import WebSocketClientConnection, websocket_connect

from portfolio_ws.auth.sessions import SessionStore
from portfolio_ws.auth.sessions.external import ExternalSessionStore
from portfolio_ws.auth.stores import open_session_store, open_user_store
from portfolio_ws.auth.users import User, UserStoreBase
from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.config import load_settings
from portfolio_ws.constants import Close
from portfolio_ws.core.events import Event
from portfolio_ws.feeds import Feed, NoFeed
from portfolio_ws.server.app import make_parts, make_server as make_http_server
from portfolio_ws.server.parts import HttpParts
from portfolio_ws.server.service import Service
from portfolio_ws.settings import Settings

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
PASSWORD = "correct horse battery"
RECV_TIMEOUT = 10.0


class Client:
    """A WebSocket client speaking JSON, with awaitable reads (no sleeps)."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn

    async def send(self, message: Any) -> None:
        await self.conn.write_message(message if isinstance(message, (str, bytes)) else ujson.dumps(message),
                                      binary=isinstance(message, bytes))

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any] | None:
        """The next message, or None once the server closed the connection."""
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        return None if raw is None else ujson.loads(raw)

    async def expect(self, type_: str, code: str | None = None) -> dict[str, Any]:
        msg = await self.recv()
        assert msg is not None, f"closed ({self.close_code} {self.close_reason}) while waiting for {type_}"
        assert msg["type"] == type_, f"expected {type_} {code or ''}, got {msg}"
        if code is not None:
            assert msg["data"]["code"] == code, f"expected {code}, got {msg}"
        return msg

    async def subscribe(self, *channels: str, resume_from: int | None = None) -> dict[str, Any]:
        """Subscribe and return the SUBSCRIBED info (the snapshot/replay that follows is left to read)."""
        message: dict[str, Any] = {"type": "subscribe", "channels": list(channels)}
        if resume_from is not None:
            message["resumeFrom"] = resume_from
        await self.send(message)
        return await self.expect("info", "SUBSCRIBED")

    async def assert_nothing_pending(self) -> None:
        """Prove no message is queued before now: the reply to a ping comes next."""
        await self.send({"type": "ping"})
        msg = await self.recv()
        assert msg is not None and msg["type"] == "pong", f"expected nothing pending, got {msg}"

    async def closed(self, timeout: float = RECV_TIMEOUT) -> tuple[int | None, str | None]:
        """Read until the server closes; returns (code, reason). Fails if a data message arrives."""
        while True:
            msg = await self.recv(timeout)
            if msg is None:
                return self.close_code, self.close_reason
            assert msg["type"] in ("info", "error", "pong"), f"unexpected data before close: {msg}"

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    @property
    def close_reason(self) -> str | None:
        return self.conn.close_reason

    def close(self) -> None:
        self.conn.close()


class FakeClock:
    """Time under the test's control: pass as ``make_server(clock=...)``, move ``now``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class TestServer:
    settings: Settings
    service: Service
    http: HTTPServer
    port: int
    users: UserStoreBase
    bus: InMemoryBus
    parts: HttpParts | None = None  # what the handlers use beside the service; stop() closes it
    http_client: AsyncHTTPClient = field(default_factory=AsyncHTTPClient)
    clients: list[Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/portfolio"

    def add_user(self, username: str, admin: bool = False, password: str = PASSWORD) -> User:
        return self.users.add(username, password, admin=admin)

    async def fetch(self, path: str, method: str = "GET", body: Any = None, cookie: str | None = None,
                    headers: dict[str, str] | None = None) -> HTTPResponse:
        """An HTTP request that returns the response whatever its status."""
        all_headers = dict(headers or {})
        if cookie:
            all_headers["Cookie"] = f"session={cookie}"
        data = body if isinstance(body, (bytes, str)) or body is None else ujson.dumps(body)
        if method == "POST" and not any(k.lower() == "content-type" for k in all_headers):
            all_headers["Content-Type"] = "application/json"  # what login requires; tests of others say so
        if method == "POST" and data is None:
            data = b""
        request = HTTPRequest(self.url + path, method=method, body=data, headers=all_headers)
        try:
            return await self.http_client.fetch(request)
        except HTTPClientError as exc:
            assert exc.response is not None
            return exc.response

    async def login(self, username: str, password: str = PASSWORD) -> str:
        response = await self.fetch("/api/auth/login", "POST", {"username": username, "password": password})
        assert response.code == 200, response.body
        cookie = response.headers["Set-Cookie"]
        return cookie.split(";", 1)[0].split("=", 1)[1]

    async def user_session(self, username: str, admin: bool = False) -> tuple[User, str]:
        user = self.add_user(username, admin=admin)
        return user, await self.login(username)

    async def connect(self, cookie: str | None = None, headers: dict[str, str] | None = None,
                      expect_connected: bool = True) -> Client:
        all_headers = dict(headers or {})
        if cookie:
            all_headers["Cookie"] = f"session={cookie}"
        conn = await websocket_connect(HTTPRequest(self.ws_url, headers=all_headers))
        client = Client(conn)
        self.clients.append(client)
        if expect_connected:
            await client.expect("info", "CONNECTED")
        return client

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    # ---- the server's side, read in this one place ----------------------------------------
    async def until(self, condition: Callable[[], bool], timeout: float = RECV_TIMEOUT) -> None:
        """Wait until ``condition()`` holds, re-checked each time the service handles an input
        (``Service.when``): no polling, no sleep."""
        await asyncio.wait_for(self.service.when(condition), timeout)

    def connection_ids(self, user_id: str | None = None) -> list[int]:
        """The connections the server holds open (of ``user_id``), oldest first."""
        connections = self.service.core.hub.connections
        return [conn_id for conn_id, conn in connections.items() if user_id is None or conn.user_id == user_id]

    def subscribed(self, conn_id: int) -> bool:
        """Whether the server has processed a subscribe of this connection."""
        conn = self.service.core.hub.connections.get(conn_id)
        return conn is not None and bool(conn.channels)

    def close_connection(self, conn_id: int, close: Close) -> None:
        """Close one connection from the server's side, as the server does for that reason."""
        self.service.core.close(conn_id, close, self.service.clock())
        self.service.pump()

    async def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.http.stop()
        await self.service.shutdown(drain_seconds=1.0)
        if self.parts is not None:
            await self.parts.close()
        await self.http.close_all_connections()
        self.http_client.close()
        await self.service.sessions.close()
        await self.users.aclose()


async def start_server(tmp_path: Path, overrides: dict[str, Any] | None = None, feed: Feed | None = None,
                       clock: Callable[[], float] = time.time, seq_base: int | None = 0,
                       port: int = 0) -> TestServer:
    """``seq_base=0`` keeps offsets 1, 2, 3 for readable tests; None uses the production base.
    ``port=0`` picks a free port; a given port lets a test restart a server where clients expect it."""
    settings = load_settings(overrides={"auth.database": str(tmp_path / "test.sqlite3"),
                                        "feed.source": "none", **(overrides or {})})
    # auth.database: a SQLite file, or a postgresql:// URL (tests/postgres_server.py)
    users = open_user_store(settings.auth.database, hasher=FAST_HASHER)
    sessions: SessionStore = await open_session_store(settings.auth)
    if settings.auth.external_session_url:
        sessions = ExternalSessionStore.from_settings(settings.auth)
    bus = InMemoryBus()
    service = Service(settings, bus=bus, feed=feed or NoFeed(), users=users, sessions=sessions, clock=clock,
                      seq_base=seq_base)
    parts = make_parts(service)  # before start: it takes in the feed's first events too
    await service.start()
    [sock] = bind_sockets(port, "127.0.0.1")
    http = make_http_server(service, parts)
    http.add_sockets([sock])
    return TestServer(settings, service, http, sock.getsockname()[1], users, bus, parts)
