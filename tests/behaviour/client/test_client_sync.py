"""``PortfolioClient`` when the platform syncs the user (``PUT /api/v1/users/{userId}/portfolio``):
the snapshot that arrives unasked replaces the client's state and moves its offset."""

from __future__ import annotations

import ujson

from portfolio_ws.client import Snapshot
from tests.behaviour.client.clients import started
from tests.publishing import new_key
from tests.syncing import state, sync


async def test_an_unasked_snapshot_after_a_sync_replaces_the_clients_state(make_server, make_client):
    server = await make_server()
    user, client, rec = await started(make_client, server)
    assert set(client.portfolio.positions) == {"AAPL"} and set(client.portfolio.orders) == {"order-1"}
    response = await sync(server, user.user_id, state(positions=[], orders=[]), new_key(server))
    offset = ujson.loads(response.body)["offset"]
    snapshot = await rec.next(Snapshot)
    assert snapshot.seq == offset and snapshot.positions == () and snapshot.orders == ()
    assert client.portfolio.positions == {} and client.portfolio.orders == {}
    assert client.portfolio.seq == offset and client.portfolio.account is not None
