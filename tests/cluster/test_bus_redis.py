"""RedisBus beyond the shared contract: gaps repaired from the recovery stream, Redis outages."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

import redis.asyncio as aioredis
import ujson

from portfolio_ws.bus_redis import RedisBus
from portfolio_ws.core.codec import to_dict
from tests.builders import position
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)
from tests.test_bus_contract import Received

TIMEOUT = 15.0


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a condition of a background task (reconnects have no future to await)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_a_missed_message_is_repaired_from_the_recovery_stream(io_loop: Any, redis_server: RedisServer) -> None:
    a = RedisBus(redis_server.url, node_id="a")
    await a.start()
    received = Received(a)
    try:
        a.publish(position("u1", price="1.00"))
        await received.until(1)
        # Event 2 is numbered and stored, but its PUBLISH never reached this node.
        raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        seq = await raw.incr(a.seq_key("u1"))
        await raw.xadd(a.recovery_key("u1"), {"e": ujson.dumps(to_dict(position("u1", price="2.00"))),
                                              "t": repr(time.time())}, id=f"{seq}-1")
        await raw.aclose()
        a.publish(position("u1", price="3.00"))
        items = await received.until(3)
        assert [str(e.current_price) for e, _ in items] == ["1.00", "2.00", "3.00"]  # type: ignore[union-attr]
        assert [s for _, s in items] == [items[0][1], items[0][1] + 1, items[0][1] + 2]  # type: ignore[operator]
        assert a.counters["repaired"] == 1
    finally:
        await a.close()


async def test_offsets_start_at_the_publish_time_in_ms(io_loop: Any, redis_server: RedisServer) -> None:
    bus = RedisBus(redis_server.url, clock=lambda: 1_767_225_600.0)
    await bus.start()
    received = Received(bus)
    try:
        bus.publish(position("u1"))
        [(_, seq)] = await received.until(1)
        assert seq == 1_767_225_600_000 + 1  # so a Redis that lost its data numbers above the old offsets
    finally:
        await bus.close()


async def test_redis_restart_degrades_then_recovers_by_itself(io_loop: Any, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    a, b = RedisBus(server.url, node_id="a"), RedisBus(server.url, node_id="b")
    await a.start()
    await b.start()
    on_b = Received(b)
    try:
        a.publish(position("u1", price="1.00"))
        [(_, before)] = await on_b.until(1)
        server.stop()
        for i in range(5):  # published while Redis is down: queued, not lost
            a.publish(position("u1", price=f"{i + 2}.00"))
        await until(lambda: not a.connected and not b.connected)
        assert a.health()["connected"] is False and a.health()["pending"] >= 1
        server.start()
        items = await on_b.until(6)
        await until(lambda: a.connected and b.connected)
        assert [str(e.current_price) for e, _ in items] == [f"{i}.00" for i in range(1, 7)]  # type: ignore[union-attr]
        offsets = [s for _, s in items]
        assert offsets == sorted(set(offsets)) and offsets[1] > before  # type: ignore[operator]
        assert b.counters["reconnects"] >= 1
    finally:
        await a.close()
        await b.close()
        server.stop()
