"""Cluster fixtures: ``make_node`` starts a real portfolio-ws server (like ``make_server``) whose
bus and sessions live in a shared private redis-server; users live in one SQLite file they share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from portfolio_ws.auth.users import UserStore
from portfolio_ws.config import load_settings
from portfolio_ws.feeds import NoFeed
from portfolio_ws.server.app import make_parts, make_server as make_http_server
from portfolio_ws.server.runner import build_shared, build_slots
from portfolio_ws.server.service import Service
from tests.harness import FAST_HASHER, TestServer
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

NodeFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def make_node(io_loop: Any, tmp_path: Path, redis_server: RedisServer) -> Iterator[NodeFactory]:
    nodes: list[TestServer] = []

    async def factory(**overrides: Any) -> TestServer:
        settings = load_settings(overrides={
            "auth.database": str(tmp_path / "users.sqlite3"), "feed.source": "none",
            "cluster.redis_url": redis_server.url, "cluster.node_id": f"node-{len(nodes) + 1}",
            **{key.replace("__", "."): value for key, value in overrides.items()}})
        users = UserStore(settings.auth.database, hasher=FAST_HASHER)
        bus, sessions = await build_shared(settings)
        service = Service(settings, bus=bus, feed=NoFeed(), users=users, sessions=sessions, seq_base=0,
                          slots=build_slots(settings, bus))
        parts = make_parts(service)  # before start: it takes in the feed's first events too
        await service.start()
        [sock] = bind_sockets(0, "127.0.0.1")
        http = make_http_server(service, parts)
        http.add_sockets([sock])
        node = TestServer(settings, service, http, sock.getsockname()[1], users, bus, parts)  # type: ignore[arg-type]
        nodes.append(node)
        return node

    yield factory
    for node in nodes:
        io_loop.run_sync(node.stop, timeout=10)
        io_loop.run_sync(node.service.sessions.close, timeout=10)
        io_loop.run_sync(node.service.bus.close, timeout=10)
