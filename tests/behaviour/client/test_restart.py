"""The server process goes away and a new one comes up on the same port with the same database:
the client keeps retrying, reconnects with its session, and the new server's snapshot replaces
its state (offsets start above the old ones, so the resume is never a false recovery)."""

from __future__ import annotations

from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from portfolio_ws import constants as c
from portfolio_ws.auth.sessions import SessionLifetime
from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
from portfolio_ws.auth.users import UserStore
from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.client import Connected, OrderEvent, Resumed, Snapshot, StatusChange
from portfolio_ws.feeds import NoFeed
from portfolio_ws.server.app import make_parts, make_server as make_http_server
from portfolio_ws.server.service import Service
from tests import harness
from tests.builders import order, position
from tests.harness import FAST_HASHER, start_server


async def restart(old: harness.TestServer) -> harness.TestServer:
    """Stop ``old`` and start a new process-alike on its port and database."""
    await old.stop()
    settings = old.settings
    users = UserStore(settings.auth.database, hasher=FAST_HASHER)
    sessions = SQLiteSessionStore(settings.auth.database, SessionLifetime.from_settings(settings.auth))
    bus = InMemoryBus()
    service = Service(settings, bus=bus, feed=NoFeed(), users=users, sessions=sessions)
    parts = make_parts(service)  # before start: it takes in the feed's first events too
    await service.start()
    http = make_http_server(service, parts)
    http.add_sockets(bind_sockets(old.port, "127.0.0.1"))
    return harness.TestServer(settings, service, http, old.port, users, bus, parts)


async def test_a_restarted_server_is_reconnected_and_its_snapshot_replaces_the_state(tmp_path, make_client):
    servers: list[Any] = [await start_server(tmp_path, seq_base=None)]  # offsets based on the start time
    try:
        first = servers[0]
        alice, session = await first.user_session("alice")
        first.publish(position(alice.user_id, "AAPL", "100"))
        first.publish(order(alice.user_id, "order-1", "new"))
        client, rec = make_client(first, session_id=session)
        await client.start()
        await rec.next(Snapshot)
        assert set(client.portfolio.positions) == {"AAPL"}
        old_seq = client.last_seq

        servers.append(await restart(first))
        second = servers[1]
        down = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
        assert (down.code, down.reason) == (1001, "Server shutting down")
        await rec.next(Connected)
        resumed = await rec.next(Resumed)
        assert resumed.from_seq == old_seq and not resumed.recovered and resumed.to_seq > old_seq
        snap = await rec.next(Snapshot)
        assert snap.channels == set(c.CHANNELS)
        assert client.portfolio.positions == {} and client.portfolio.orders == {}  # the new server's state
        second.publish(order(alice.user_id, "order-9", "accepted"))
        assert (await rec.next(OrderEvent)).order_id == "order-9"
        assert client.last_seq > old_seq and client.connects == 2
    finally:
        await servers[-1].stop()  # restart() stopped the others
