"""RedisBus beyond the shared contract: gaps repaired from the recovery stream, Redis outages."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import ujson

from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.core.codec import sync_to_dict, to_dict
from portfolio_ws.core.sync import Sync
from tests.builders import position
from tests.buses import Received, bus_until
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)


async def test_a_missed_message_is_repaired_from_the_recovery_stream(io_loop: Any, redis_server: RedisServer) -> None:
    a = RedisBus(redis_server.url, node_id="a")
    await a.start()
    await a.follow("u1")
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


async def test_a_missed_sync_is_repaired_from_the_recovery_stream(io_loop: Any, redis_server: RedisServer) -> None:
    a = RedisBus(redis_server.url, node_id="a")
    await a.start()
    await a.follow("u1")
    received = Received(a)
    syncs: list[tuple[Sync, int | None]] = []
    a.subscribe_syncs(lambda sync, seq: syncs.append((sync, seq)))
    try:
        a.publish(position("u1", price="1.00"))
        [(_, first)] = await received.until(1)
        # A sync is numbered and recorded as SYNC_LUA does (field s), but its message never reached us.
        sync = Sync("u1", (position("u1", symbol="MSFT"),), True)
        raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        seq = await raw.incr(a.seq_key("u1"))
        await raw.xadd(a.recovery_key("u1"), {"s": ujson.dumps(sync_to_dict(sync)), "t": "0"}, id=f"{seq}-1")
        await raw.aclose()
        a.publish(position("u1", price="3.00"))
        items = await received.until(2)
        assert syncs == [(sync, first + 1)]  # before the next event, however old its entry
        assert items[1][1] == first + 2 and a.counters["repaired"] == 1
    finally:
        await a.close()


async def test_offsets_start_at_the_publish_time_in_ms(io_loop: Any, redis_server: RedisServer) -> None:
    bus = RedisBus(redis_server.url, clock=lambda: 1_767_225_600.0)
    await bus.start()
    await bus.follow("u1")
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
    await a.follow("u1")
    await b.start()
    await b.follow("u1")
    on_b = Received(b)
    try:
        a.publish(position("u1", price="1.00"))
        [(_, before)] = await on_b.until(1)
        server.stop()
        for i in range(5):  # published while Redis is down: queued, not lost
            a.publish(position("u1", price=f"{i + 2}.00"))
        await bus_until(a, lambda: not a.connected)
        await bus_until(b, lambda: not b.connected)
        assert a.health()["connected"] is False and a.health()["pending"] >= 1
        server.start()
        items = await on_b.until(6)
        await bus_until(a, lambda: a.connected)
        await bus_until(b, lambda: b.connected)
        assert [str(e.current_price) for e, _ in items] == [f"{i}.00" for i in range(1, 7)]  # type: ignore[union-attr]
        offsets = [s for _, s in items]
        assert offsets == sorted(set(offsets)) and offsets[1] > before  # type: ignore[operator]
        assert b.counters["reconnects"] >= 1
    finally:
        await a.close()
        await b.close()
        server.stop()


async def test_a_node_restarted_under_the_same_id_publishes_at_once(io_loop: Any, redis_server: RedisServer) -> None:
    """Issue 14: publish markers were ``<node>:<n>`` with ``n`` from 1 in every process, so a node
    restarted under its id had its new events discarded for 300 s as "already published"."""
    watcher = RedisBus(redis_server.url, node_id="watcher")
    await watcher.start()
    await watcher.follow("u1")
    seen = Received(watcher)
    first = RedisBus(redis_server.url, node_id="n1")
    await first.start()
    await first.follow("u1")
    try:
        for i in range(3):
            first.publish(position("u1", price=f"{i + 1}.00"))
        await seen.until(3)
        await first.close()
        again = RedisBus(redis_server.url, node_id="n1")  # the same id, a new process run
        await again.start()
        await again.follow("u1")
        try:
            for i in range(3):
                again.publish(position("u1", price=f"{i + 4}.00"))
            items = await seen.until(6)
            assert [str(e.current_price) for e, _ in items] == [f"{i}.00" for i in range(1, 7)]  # type: ignore[union-attr]
            await bus_until(again, lambda: again.counters["published"] == 3)  # counted once the pipeline's reply is read
            assert again.counters["deduplicated"] == 0
        finally:
            await again.close()
    finally:
        await watcher.close()


async def test_a_publish_whose_marker_exists_is_not_repeated_and_is_counted(io_loop: Any,
                                                                           redis_server: RedisServer) -> None:
    """A retry after a lost reply finds the marker of the publish that ran: skipped, and counted."""
    bus = RedisBus(redis_server.url, node_id="n1")
    await bus.start()
    await bus.follow("u1")
    seen = Received(bus)
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        await raw.set(bus.marker_key("u1", 1), "1", ex=300)  # as if publish no. 1 had run before a lost reply
        bus.publish(position("u1", price="1.00"))
        bus.publish(position("u1", price="2.00"))
        [(event, _)] = await seen.until(1)
        assert str(event.current_price) == "2.00"  # type: ignore[union-attr]
        await bus_until(bus, lambda: bus.counters["published"] == 1)
        assert bus.health()["deduplicated"] == 1 and bus.health()["dropped"] == 0
    finally:
        await raw.aclose()
        await bus.close()


async def test_an_event_at_or_below_its_users_source_position_is_published_once(
        io_loop: Any, redis_server: RedisServer) -> None:
    """A new feed leader re-running the market hands the bus events the dead leader had published:
    each goes out once, per user and per epoch (a new market's positions start again)."""
    old, new = RedisBus(redis_server.url, node_id="old"), RedisBus(redis_server.url, node_id="new")
    await old.start()
    await old.follow("u1")
    await new.start()
    await new.follow("u1")
    await new.follow("u2")
    received = Received(new)
    try:
        old.publish(position("u1", price="1.00"), "m1:1")
        old.publish(position("u2", price="2.00"), "m1:2")
        await received.until(2)
        assert await new.positions(["u1", "u2", "u3"]) == {"u1": "m1:1", "u2": "m1:2"}
        new.publish(position("u1", price="1.00"), "m1:1")   # already out: refused
        new.publish(position("u2", price="2.00"), "m1:2")   # already out: refused
        new.publish(position("u1", price="3.00"), "m1:3")
        new.publish(position("u1", price="4.00"), "m2:1")   # a new market
        new.publish(position("u1", price="5.00"))           # no position: as always
        items = await received.until(5)
        assert [str(e.current_price) for e, _ in items] == [  # type: ignore[union-attr]
            "1.00", "2.00", "3.00", "4.00", "5.00"]
        await bus_until(new, lambda: new.counters["deduplicated"] == 2)
        assert await new.positions(["u1"]) == {"u1": "m2:1"}
    finally:
        await old.close()
        await new.close()


async def test_a_node_receives_only_the_events_of_the_users_it_follows(io_loop: Any, redis_server: RedisServer) -> None:
    """Scale-out (issue 14): each user's events go to the nodes that follow the user, not to all."""
    a, b = RedisBus(redis_server.url, node_id="a"), RedisBus(redis_server.url, node_id="b")
    for bus in (a, b):
        await bus.start()
    await a.follow("alice")
    await b.follow("bob")
    on_a, on_b = Received(a), Received(b)
    try:
        for i in range(5):
            a.publish(position("alice", price=f"{i + 1}.00"))
            a.publish(position("bob", price=f"{i + 1}.00"))
        await on_a.until(5)
        await on_b.until(5)
        assert {e.user_id for e in on_a.events} == {"alice"} and {e.user_id for e in on_b.events} == {"bob"}
        await b.unfollow("bob")
        await b.follow("carol")  # a round trip after the unfollow: nothing of bob's is in flight
        a.publish(position("bob", price="9.00"))
        a.publish(position("carol", price="9.00"))
        [*_, (last, _)] = await on_b.until(6)
        assert last.user_id == "carol" and len(on_b.items) == 6
        assert b.health()["following"] == 1
    finally:
        await a.close()
        await b.close()
