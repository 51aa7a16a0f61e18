"""Cluster-wide connection limits (issue 8): the per-user and total limits hold across nodes,
atomically in Redis; a closed socket's slot is free at once; a node that dies without releasing
its slots loses them within ``cluster.lease_ttl_seconds``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis

from tests.process.cluster.conftest import NodeFactory
from tests.redis_server import redis_server  # noqa: F401  (a fixture)

PER_USER = (1008, "Maximum connections exceeded (2 per user)")
CAPACITY = (1013, "Server capacity reached - try again later")


async def test_per_user_and_total_limits_hold_across_nodes(io_loop: Any, make_node: NodeFactory) -> None:
    limits = {"limits__connections_per_user": 2, "limits__total_connections": 3}
    a, b = await make_node(**limits), await make_node(**limits)
    alice_cookie = await a.login(a.add_user("alice").username)
    bob_cookie = await a.login(a.add_user("bob").username)
    carol_cookie = await a.login(a.add_user("carol").username)

    first = await a.connect(alice_cookie)
    await b.connect(alice_cookie)
    third = await a.connect(alice_cookie, expect_connected=False)  # a third, on either node: refused
    assert await third.closed() == PER_USER
    assert await (await b.connect(alice_cookie, expect_connected=False)).closed() == PER_USER

    await b.connect(bob_cookie)  # the third connection in the cluster
    assert await (await a.connect(carol_cookie, expect_connected=False)).closed() == CAPACITY
    assert await (await b.connect(bob_cookie, expect_connected=False)).closed() == CAPACITY

    first.close()  # its slot comes back as soon as node a sees the close
    await a.until(lambda: not a.connection_ids() and not a.service.busy)  # and has released the slot
    await b.connect(carol_cookie)
    assert not a.connection_ids() and len(b.connection_ids()) == 3


async def test_a_dead_nodes_slots_are_freed_within_the_lease_ttl(io_loop: Any, make_node: NodeFactory) -> None:
    settings = {"limits__connections_per_user": 1, "cluster__lease_ttl_seconds": 1.0}
    a, b = await make_node(**settings), await make_node(**settings)
    cookie = await a.login(a.add_user("alice").username)
    await a.connect(cookie)
    assert await (await b.connect(cookie, expect_connected=False)).closed() == (
        1008, "Maximum connections exceeded (1 per user)")

    a.service.slots.abandon()  # type: ignore[attr-defined]  # node a "crashes": no renewal, no release
    started = time.monotonic()
    while True:
        client = await b.connect(cookie, expect_connected=False)
        hello = await client.recv()
        if hello is not None and hello["data"].get("code") == "CONNECTED":
            break
        assert time.monotonic() - started < 5, "the dead node's slot outlived its lease"
        await asyncio.sleep(0.05)  # the lease runs out inside Redis: retrying as a client would is how to see it
    assert time.monotonic() - started >= 0.5  # freed by the lease running out, not at once


async def test_a_live_node_keeps_its_slots_past_the_ttl(io_loop: Any, make_node: NodeFactory,
                                                       redis_server: Any) -> None:
    ttl = 0.6
    settings = {"limits__connections_per_user": 1, "cluster__lease_ttl_seconds": ttl}
    a, b = await make_node(**settings), await make_node(**settings)
    alice = a.add_user("alice")
    cookie = await a.login(alice.username)
    # Each renewal sets the lease key's expiry: Redis announces it (keyspace notifications), so the
    # test awaits renewals, not a fixed time, until over two lease lengths have passed.
    watcher = aioredis.Redis.from_url(redis_server.url)
    await watcher.config_set("notify-keyspace-events", "Kg")
    events = watcher.pubsub()
    await events.subscribe(f"__keyspace@0__:{a.settings.cluster.key_prefix}slots:user:{alice.user_id}")
    held = await a.connect(cookie)
    loop = asyncio.get_running_loop()
    connected, renewals = loop.time(), 0
    announced = events.listen()
    try:
        while loop.time() - connected < 2 * ttl:  # only renewal keeps the slot past its lease
            message = await asyncio.wait_for(anext(announced), ttl)  # a renewal within every lease
            renewals += message["type"] == "message" and message["data"] == b"expire"
    finally:
        await events.aclose()
        await watcher.aclose()
    assert renewals >= 3
    assert await (await b.connect(cookie, expect_connected=False)).closed() == (
        1008, "Maximum connections exceeded (1 per user)")
    await held.send({"type": "ping"})
    assert (await held.recv() or {}).get("type") == "pong"


async def test_redis_down_still_admits_and_a_failing_database_closes_the_new_socket_1011(
        io_loop: Any, make_node: NodeFactory, redis_server: Any) -> None:
    a = await make_node()
    cookie = await a.login(a.add_user("alice").username)
    held = await a.connect(cookie)
    redis_server.stop()  # sessions live in the database, Redis only caches them: still admitted
    admitted = await a.connect(cookie)
    await admitted.send({"type": "ping"})
    assert (await admitted.recv() or {}).get("type") == "pong"

    async def broken(session_id: str, now: float) -> Any:
        raise RuntimeError("the database is gone")

    a.service.sessions.store.lookup = broken  # type: ignore[attr-defined,method-assign]
    refused = await a.connect(cookie, expect_connected=False)
    assert await refused.closed() == (1011, "Internal server error")  # the client will come back
    await held.send({"type": "ping"})
    assert (await held.recv() or {}).get("type") == "pong"
