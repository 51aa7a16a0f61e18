"""The shared step of the Python client tests: a client started against a real server."""

from __future__ import annotations

from portfolio_ws.client import Snapshot
from tests.builders import order, position


async def started(make_client, server, user="alice", **kwargs):
    """A user with a position and an order, and a started client that has its first snapshot."""
    u, session = await server.user_session(user)
    server.publish(position(u.user_id, "AAPL", "100"))
    server.publish(order(u.user_id, "order-1", "new"))
    client, rec = make_client(server, session_id=session, **kwargs)
    await client.start()
    await rec.next(Snapshot)
    return u, client, rec
