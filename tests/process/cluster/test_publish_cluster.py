"""Publishing in a cluster: two nodes on a real redis-server; an item retried on the other node is
not delivered twice (the seen ids are in Redis), and the user's sockets on both nodes get it."""

from __future__ import annotations

from typing import Any

import redis.asyncio
import ujson

from portfolio_ws.auth.apikeys import ApiKeyStore
from tests.process.cluster.conftest import NodeFactory
from tests.publishing import publish, trade_ids, trade_item
from tests.redis_server import RedisServer


async def test_a_retry_on_the_other_node_is_not_delivered_twice(io_loop: Any, make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    alice = a.add_user("alice").user_id
    cookie = await a.login("alice")
    store = ApiKeyStore(a.settings.auth.database)  # the nodes share the users' database, keys too
    key = store.add("platform", ["publish"])[1]
    store.close()
    clients = [await node.connect(cookie) for node in (a, b)]
    for client in clients:
        await client.subscribe("trades")
        await client.expect("snapshot")
    batch = [trade_item(alice, "fill-1", "t-1"), trade_item(alice, "fill-1", "t-1 again"),
             trade_item(alice, "fill-2", "t-2")]
    first = ujson.loads((await publish(a, batch, key)).body)
    assert [r["status"] for r in first["results"]] == ["accepted", "duplicate", "accepted"]
    offsets = [r["offset"] for r in first["results"]]  # Redis's, as the sockets get them
    assert offsets[1] is None and isinstance(offsets[0], int) and offsets[2] == offsets[0] + 1
    again = ujson.loads((await publish(b, batch + [trade_item(alice, "fill-3", "t-3")], key)).body)
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate", "duplicate", "accepted"]
    for client in clients:
        seen: list[str] = []
        seqs: list[int] = []
        while len(seen) < 3:
            message = await client.recv()
            assert message is not None
            if trade_ids(message):
                seqs.append(message["seq"])
                seen += trade_ids(message)
        assert seen == ["t-1", "t-2", "t-3"] and seqs == sorted(seqs)
        assert seqs[:2] == [offsets[0], offsets[2]] and seqs[2] == again["results"][3]["offset"]
        await client.assert_nothing_pending()


async def test_an_accepted_item_is_in_redis_when_the_answer_comes(io_loop: Any, make_node: NodeFactory,
                                                                    redis_server: RedisServer) -> None:
    # The answer used to come once the ids were claimed, the events only queued for Redis: the
    # sockets got them up to a few hundred ms after it, and a node dying in between lost events
    # whose ids were taken (a retry was then a duplicate). Now the claim and the publish are one
    # script, run before the answer.
    node = await make_node()
    alice = node.add_user("alice").user_id
    store = ApiKeyStore(node.settings.auth.database)
    key = store.add("platform", ["publish"])[1]
    store.close()
    items = [trade_item(alice, f"fill-{n}", f"t-{n}") for n in range(200)]
    body = ujson.loads((await publish(node, items, key)).body)
    assert body["accepted"] == 200
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        held = await raw.lrange(node.service.bus.trades_key(alice), 0, -1)  # type: ignore[attr-defined]
        assert len(held) == 100  # the state keeps the day's last 100 trades: all published already
        assert await raw.xlen(node.service.bus.recovery_key(alice)) == 200  # type: ignore[attr-defined]
    finally:
        await raw.aclose()
