"""The per-user state the Redis bus keeps (bus/state.py) is the state the engine keeps
(core.portfolio.PortfolioState) at the same offset: seeded random streams of every kind of event
- positions opened and closed, orders opening and closing, accounts, trades, trading days moving
forward and events of earlier days arriving late - published through a real redis-server, then
loaded back and compared snapshot for snapshot."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest

from portfolio_ws import constants as c
from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.core.events import Event
from portfolio_ws.core.portfolio import SNAPSHOT_TRADES, PortfolioState
from portfolio_ws.core.sync import Sync
from tests.builders import T0, account, order, position, trade
from tests.buses import Received
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

STATUSES = ["new", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired"]


def random_stream(seed: int, count: int, user: str = "u1") -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    day = 0
    for i in range(count):
        if rng.random() < 0.03:
            day += 1                                     # the next trading day (and nights between)
        back = rng.random() < 0.08                       # a late event of an earlier day
        at = T0 + timedelta(days=max(0, day - (1 if back else 0)), minutes=rng.randrange(0, 360))
        kind = rng.choice("ppooatt")
        if kind == "p":
            qty = "0" if rng.random() < 0.25 else str(rng.randrange(1, 500))
            events.append(position(user, symbol=rng.choice(["AAPL", "MSFT", "TSLA", "NVDA"]), qty=qty,
                                   price=f"{rng.randrange(100, 300)}.{rng.randrange(0, 100):02d}", at=at))
        elif kind == "o":
            events.append(order(user, order_id=f"o{rng.randrange(0, 25)}", status=rng.choice(STATUSES), at=at))
        elif kind == "a":
            events.append(account(user, equity=f"{100000 + i}.25", at=at))
        else:
            events.append(trade(user, trade_id=f"t{i}", at=at))
    return events


async def check(bus: RedisBus, received: Received, events: list[Event], already: int, user: str) -> None:
    expected = PortfolioState()
    for event in events:
        bus.publish(event)
        expected.apply(event)
    items = await received.until(already + len(events))
    loaded = await bus.load_user(user)
    assert loaded.seq == items[-1][1]
    assert loaded.state.snapshot(c.CHANNELS) == expected.snapshot(c.CHANNELS)
    assert loaded.state.day == expected.day


async def test_the_state_in_redis_is_the_engines_state_at_the_same_offset(io_loop: Any,
                                                                          redis_server: RedisServer) -> None:
    bus = RedisBus(redis_server.url, node_id="n1", max_events=50)
    await bus.start()
    received = Received(bus)
    try:
        total = 0
        for seed in range(6):  # one user per stream
            events = random_stream(seed, 300, user=f"user-{seed}")
            assert sum(1 for e in events if e.TYPE == c.TRADE_EXECUTED) > SNAPSHOT_TRADES // 2
            await bus.follow(f"user-{seed}")
            await check(bus, received, events, total, f"user-{seed}")
            total += len(events)
        assert bus.counters["invalid"] == 0
    finally:
        await bus.close()


async def test_loading_returns_the_offset_and_the_held_history(io_loop: Any, redis_server: RedisServer) -> None:
    bus = RedisBus(redis_server.url, node_id="n1", max_events=3)
    await bus.start()
    await bus.follow("u1")
    received = Received(bus)
    try:
        empty = await bus.load_user("nobody")
        assert (empty.seq, empty.history) == (0, []) and empty.state.snapshot(c.CHANNELS)["positions"] == []
        for i in range(5):
            bus.publish(trade("u1", trade_id=f"t{i}"))
        items = await received.until(5)
        loaded = await bus.load_user("u1")
        assert loaded.seq == items[-1][1]
        assert [seq for seq, _, _ in loaded.history] == [s for _, s in items[-3:]]   # the last max_events
        assert [e.trade_id for _, _, e in loaded.history] == ["t2", "t3", "t4"]      # type: ignore[attr-defined]
    finally:
        await bus.close()


async def test_a_burst_of_loads_waits_for_connections_instead_of_failing(io_loop: Any,
                                                                         redis_server: RedisServer) -> None:
    """A reconnect storm loads hundreds of users at once: redis-py's default pool failed them with
    "Too many connections" (the scaling benchmark's first run: 101 of 200 sockets closed 1011)."""
    bus = RedisBus(redis_server.url, node_id="n1")
    await bus.start()
    try:
        loaded = await asyncio.gather(*(bus.load_user(f"user-{i}") for i in range(500)))
        assert len(loaded) == 500 and all(s.seq == 0 for s in loaded)
    finally:
        await bus.close()


@pytest.mark.slow
async def test_a_sync_in_redis_leaves_the_engines_state_and_history_starts_after_it(
        io_loop: Any, redis_server: RedisServer) -> None:
    bus = RedisBus(redis_server.url, node_id="n1", max_events=50)
    await bus.start()
    syncs: list[tuple[Sync, int | None]] = []
    bus.subscribe_syncs(lambda sync, seq: syncs.append((sync, seq)))
    received = Received(bus)
    try:
        for seed in range(4):
            user = f"user-{seed}"
            rng = random.Random(seed)
            events = random_stream(seed, 200, user=user)
            expected = PortfolioState()
            await bus.follow(user)
            for n, event in enumerate(events):
                bus.publish(event)
                expected.apply(event)
                if n % 60 == 59:  # a sync of some of what came before, trades kept or given
                    parts = rng.sample(events[:n], 12)
                    kept = rng.random() < 0.5
                    ordered = sorted(parts, key=lambda e: ["account_update", "order_update", "position_update",
                                                           "trade_executed"].index(e.TYPE))
                    sync = Sync(user, tuple(e for e in ordered if not (kept and e.TYPE == c.TRADE_EXECUTED)), kept)
                    offset = await bus.publish_sync(sync)
                    expected = sync.state(expected)
            await received.until(200 * (seed + 1))  # the events after the last sync are in Redis too
            loaded = await bus.load_user(user)
            assert loaded.state.snapshot(c.CHANNELS) == expected.snapshot(c.CHANNELS), seed
            assert offset is not None and all(seq > offset for seq, _, _ in loaded.history)
            assert len(loaded.history) == len(events) - 180  # the events after the last sync
        assert bus.counters["invalid"] == 0 and len(syncs) == 12  # each delivered here once, in order
        for seed in range(4):
            offsets = [seq for sync, seq in syncs if sync.user_id == f"user-{seed}"]
            assert len(offsets) == 3 and offsets == sorted(offsets)
    finally:
        await bus.close()
