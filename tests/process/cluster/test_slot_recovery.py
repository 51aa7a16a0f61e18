"""Connection slots after failures (issue 14): Redis restarted empty gets every held slot back within
one renewal period; a killed process's slots don't refuse its users' reconnects; a node restarted
under its id frees what its earlier run held; when it can't be told, the refusal is retryable."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from portfolio_ws import constants as c
from portfolio_ws.slots.redis import RedisSlots
from tests.poll import until
from tests.process.cluster.conftest import NodeFactory
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

PER_USER = (1008, "Maximum connections exceeded (1 per user)")


async def test_slots_are_registered_again_within_a_renewal_period_after_redis_restarts_empty(
        io_loop: Any, make_node: NodeFactory, redis_server: RedisServer) -> None:
    ttl = 1.5
    settings = {"limits__connections_per_user": 1, "cluster__lease_ttl_seconds": ttl}
    a, b = await make_node(**settings), await make_node(**settings)
    alice = a.add_user("alice")
    cookie = await a.login(alice.username)
    held = await a.connect(cookie)
    redis_server.restart()  # every slot is gone
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:  # the renewal is a timer in node a, the slots are in Redis: polled (tests/poll.py)
        await until(lambda: raw.zcard(f"pws:slots:user:{alice.user_id}"), ttl / 3 + 2.0,
                    "held slots registered again", every=0.02)
    finally:
        await raw.aclose()
    # The limit holds again, on both nodes; the sessions came from the database.
    assert await (await b.connect(cookie, expect_connected=False)).closed() == PER_USER
    assert await (await a.connect(cookie, expect_connected=False)).closed() == PER_USER
    await held.send({"type": "ping"})
    assert (await held.recv() or {}).get("type") == "pong"


async def test_a_killed_processes_slots_do_not_refuse_its_users_reconnecting(
        io_loop: Any, make_node: NodeFactory) -> None:
    settings = {"limits__connections_per_user": 1, "cluster__lease_ttl_seconds": 30.0}
    a, b = await make_node(**settings), await make_node(**settings)
    cookie = await a.login(a.add_user("alice").username)
    await a.connect(cookie)
    assert await (await b.connect(cookie, expect_connected=False)).closed() == PER_USER  # a is alive
    slots = a.service.slots
    assert isinstance(slots, RedisSlots)
    slots.abandon()  # node a is killed: no renewal, no release,
    await slots._redis.connection_pool.disconnect()  # and the kernel closes its connections
    client = await b.connect(cookie)  # at once, not 30 s later when the lease lapses
    await client.send({"type": "ping"})
    assert (await client.recv() or {}).get("type") == "pong"
    assert b.service.slots.reclaimed == 1  # type: ignore[attr-defined]


async def test_a_node_restarted_under_its_id_frees_what_its_earlier_run_held(
        io_loop: Any, redis_server: RedisServer) -> None:
    first = RedisSlots(redis_server.url, "box-w1", per_user=1, total=10, ttl_seconds=30.0)
    other = RedisSlots(redis_server.url, "box-w2", per_user=1, total=10, ttl_seconds=30.0)
    await first.start()
    await other.start()
    taken, refusal = await first.acquire("alice")
    assert taken and refusal is None
    assert (await other.acquire("bob"))[1] is None
    first.abandon()  # killed; its connections stay open here, so only its id can tell
    again = RedisSlots(redis_server.url, "box-w1", per_user=1, total=10, ttl_seconds=30.0)
    try:
        await again.start()  # the earlier run's slot is gone, the other node's kept
        slot, refusal = await again.acquire("alice")
        assert slot and refusal is None
        assert (await again.acquire("bob"))[1] == c.user_limit_close(1)
    finally:
        for slots in (first, other, again):
            await slots.close()


async def test_over_the_limit_when_live_processes_cannot_be_told_is_a_retryable_1013(
        io_loop: Any, redis_server: RedisServer) -> None:
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.execute_command("ACL", "SETUSER", "nolist", "on", ">secret-pw", "~*", "&*", "+@all", "-client|list")
    await admin.aclose()
    dead = RedisSlots(redis_server.url, "dead", per_user=1, total=10, ttl_seconds=30.0)
    limited = RedisSlots(f"redis://nolist:secret-pw@127.0.0.1:{redis_server.port}/0", "live", per_user=1,
                         total=10, ttl_seconds=30.0)
    try:
        await dead.acquire("alice")
        dead.abandon()
        await dead._redis.connection_pool.disconnect()
        slot, refusal = await limited.acquire("alice")
        assert slot is None and refusal == c.STALE_CONNECTION_SLOTS
        assert (refusal.code, c.CLOSE_CAUSES[refusal.cause][1].reconnect) == (1013, True)
    finally:
        await dead.close()
        await limited.close()
