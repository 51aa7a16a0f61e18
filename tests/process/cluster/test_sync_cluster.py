"""A sync in a cluster: two nodes on a real redis-server. The user's sockets on both nodes get the
same snapshot at the sync's offset, every node (one started after the sync too) serves the same
state, a resume from before the sync gets a snapshot, and an invalid sync changes nothing anywhere."""

from __future__ import annotations

from typing import Any

import pytest
import ujson

from portfolio_ws import constants as c
from portfolio_ws.auth.apikeys import ApiKeyStore
from tests.process.cluster.conftest import NodeFactory
from tests.publishing import publish, trade_item
from tests.syncing import POSITION, state, sync


async def portfolio(node: Any, cookie: str) -> dict[str, Any]:
    """The node's ``GET /api/portfolio``: its seq and data (not the time it answered)."""
    response = await node.fetch("/api/portfolio", cookie=cookie)
    assert response.code == 200, response.body
    body = ujson.loads(response.body)
    return {"seq": body["seq"], "data": body["data"]}


@pytest.mark.slow
async def test_every_node_serves_the_synced_state_and_every_socket_gets_the_snapshot(
        io_loop: Any, make_node: NodeFactory) -> None:
    roomy = {"limits__connections_per_user": 10}  # two sockets per node, and resumes
    a, b = await make_node(**roomy), await make_node(**roomy)
    alice = a.add_user("alice").user_id
    a.add_user("bob")
    cookie, bobs_cookie = await a.login("alice"), await a.login("bob")
    store = ApiKeyStore(a.settings.auth.database)  # the nodes share the users' database, keys too
    key = store.add("platform", ["publish"])[1]
    store.close()
    clients = [await node.connect(cookie) for node in (a, b)]
    for client in clients:
        await client.subscribe(*c.CHANNELS)
        await client.expect("snapshot")
    bob = await b.connect(bobs_cookie)
    await bob.subscribe(*c.CHANNELS)
    await bob.expect("snapshot")
    published = ujson.loads((await publish(a, [trade_item(alice, "fill-1", "t-1")], key)).body)
    before = published["results"][0]["offset"]
    for client in clients:
        assert (await client.expect("trade_executed"))["seq"] == before

    response = await sync(b, alice, state(), key)  # through the other node
    assert response.code == 200, response.body
    offset = ujson.loads(response.body)["offset"]
    assert offset == before + 1
    snapshots = [await client.expect("snapshot") for client in clients]
    assert snapshots[0]["seq"] == snapshots[1]["seq"] == offset
    assert snapshots[0]["data"] == snapshots[1]["data"]
    assert [p["symbol"] for p in snapshots[0]["data"]["positions"]] == ["AAPL"]
    assert [t["tradeId"] for t in snapshots[0]["data"]["trades"]] == ["t-1"]  # kept: no trades part
    await bob.assert_nothing_pending()
    late = await make_node(**roomy)  # never saw the user: loads the state from Redis
    served = [await portfolio(node, cookie) for node in (a, b, late)]
    assert all(s["seq"] == offset and s["data"] == snapshots[0]["data"] for s in served), served

    # A resume from before the sync gets a snapshot, on any node; one from the sync on, the events.
    await publish(a, [trade_item(alice, "fill-2", "t-2")], key)
    for client in clients:
        await client.expect("trade_executed")
    for node in (b, late):
        resumed = await node.connect(cookie)
        await resumed.subscribe(*c.CHANNELS, resume_from=before)
        assert (await resumed.expect("info", "RESUMED"))["data"]["details"]["recovered"] is False
        assert [t["tradeId"] for t in (await resumed.expect("snapshot"))["data"]["trades"]] == ["t-1", "t-2"]
        replayed = await node.connect(cookie)
        await replayed.subscribe("trades", resume_from=offset)
        assert (await replayed.expect("trade_executed"))["data"]["tradeId"] == "t-2"
        assert (await replayed.expect("info", "RESUMED"))["data"]["details"]["recovered"] is True

    # Invalid: refused by path, nothing changed on any node, nothing sent.
    refused = await sync(a, alice, state(positions=[{**POSITION, "quantity": "-1"}], trades=[]), key)
    assert refused.code == 400 and ujson.loads(refused.body)["error"]["field"] == "positions[0].quantity"
    after = [await portfolio(node, cookie) for node in (a, b, late)]
    assert all(s == after[0] for s in after) and after[0]["seq"] == offset + 1
    for client in clients:
        await client.assert_nothing_pending()

    # Trades given replace those held, on every node alike.
    await sync(a, alice, state(positions=[], trades=[trade_item(alice, "x", "t-9")["data"]]), key)
    for client in clients:
        assert [t["tradeId"] for t in (await client.expect("snapshot"))["data"]["trades"]] == ["t-9"]
    final = [await portfolio(node, cookie) for node in (a, b, late)]
    assert all(s == final[0] for s in final) and final[0]["data"]["positions"] == []
