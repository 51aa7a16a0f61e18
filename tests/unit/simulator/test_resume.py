"""A simulated market outlives the node running it (simulator/checkpoint.py, resume.py): a feed
started elsewhere continues it from a checkpoint, and clients get every event of the one market
once - nothing the dead feed had published again, nothing it had not lost. Real Redis bus."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import ujson

from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.constants import OrderSide, OrderStatus, PositionSide
from portfolio_ws.core.codec import to_dict
from portfolio_ws.core.events import TradeExecuted
from portfolio_ws.feeds import FeedState
from portfolio_ws.settings import SimulatorSettings
from simulator import Simulation
from simulator.checkpoint import Checkpoint, Market, Positions
from simulator.clock import SimClock
from simulator.feed import SimulatorFeed
from tests.buses import Received
from tests.poll import until
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

from .runs import ny
from .test_feed import USERS, FakeClock, settings

SETTINGS = settings(speed=12.0)  # a few thousand events: enough trades, quick through Redis


class MemoryState(FeedState):
    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.writes = 0

    async def get(self, name: str) -> bytes | None:
        return self.records.get(name)

    async def put(self, name: str, value: bytes) -> None:
        self.records[name] = value
        self.writes += 1


TIMEOUT = 15.0  # polls of the feed's background task (it has no future to await): tests/poll.py


def reference(market: Market, real_end: float) -> list[dict[str, Any]]:
    """The one market, run uninterrupted from its start to what ``real_end`` maps to."""
    core = Simulation(market.users, SETTINGS, market.sim_start)
    events = core.initial_events()
    for ordinal, at, user in market.joins:  # a user joined: the market ran fully to then, then the user
        events += [e for _, e in core.advance_to(at)]
        assert len(events) == ordinal
        events += core.add_user(user)
    target = SimClock(market.sim_start, market.real_start, SETTINGS.speed, True).sim_time(real_end)
    return [to_dict(e) for e in events + [e for _, e in core.advance_to(target)]]


async def watching(url: str, users: list[str], **bus: Any) -> tuple[RedisBus, Received]:
    """A node's bus following ``users`` (a node receives the events of the users it follows), and
    what it receives."""
    watcher = RedisBus(url, node_id="watcher", **bus)
    await watcher.start()
    for user in users:
        await watcher.follow(user)
    return watcher, Received(watcher)


async def leading(url: str, node_id: str, state: FeedState, feed_clock: FakeClock, users: list[str] = USERS,
                  **bus_options: Any) -> tuple[SimulatorFeed, RedisBus]:
    """A feed of ``users`` keeping ``state`` every 5 s, started on a new bus of its own (made with
    ``bus_options``)."""
    bus = RedisBus(url, node_id=node_id, **bus_options)
    await bus.start()
    feed = SimulatorFeed(users, SETTINGS, feed_clock)
    feed.keep_state(state, interval=5.0)
    await feed.start(bus)
    return feed, bus


async def advance(clock: FakeClock, feed: SimulatorFeed, bus: RedisBus, market: Market, seconds: int,
                  step: int = 5) -> None:
    """Move the clock ``seconds`` on, ``step`` at a time, each step awaited until the feed has run
    the market to it and its bus has sent everything."""
    sim_clock = SimClock(market.sim_start, market.real_start, SETTINGS.speed, True)
    for _ in range(seconds // step):
        clock.now += step
        target = sim_clock.sim_time(clock.now)
        await until(lambda: feed.simulation is not None and feed.simulation.now >= target
                    and not feed.health().details["behind"] and bus.health()["pending"] == 0,
                    TIMEOUT, f"the market run to {target} and sent")


async def caught_up(feed: SimulatorFeed, bus: RedisBus, received: Received, events: int) -> None:
    """The feed has run the market to the clock, ``events`` have arrived and its bus sent all."""
    await until(lambda: feed.health().details["marketEvents"] >= events and not feed.health().details["behind"],
                TIMEOUT, f"{events} market events, none behind")
    await received.until(events)
    await until(lambda: bus.health()["pending"] == 0, TIMEOUT, "the bus sent everything")


@pytest.mark.slow
async def test_a_new_feed_continues_the_market_and_every_event_goes_out_once(
        io_loop: Any, redis_server: RedisServer) -> None:
    clock = FakeClock(ny("2025-03-03 10:00"))
    state = MemoryState()
    watcher, received = await watching(redis_server.url, USERS)
    first, first_bus = await leading(redis_server.url, "first", state, clock)
    market = Market.decode(state.records["market"])
    await advance(clock, first, first_bus, market, 40, step=10)  # 40 real seconds at speed 12; a checkpoint stored every 5
    await until(lambda: "checkpoint-0" in state.records, TIMEOUT, "a checkpoint stored")
    published = first.health().details["marketEvents"]
    # The node dies: its feed stops, whatever its bus had not sent yet is lost with it.
    await first.stop()
    await first_bus.close(drain_seconds=0)

    clock.now += 15  # the lease runs out; another node takes over
    second, second_bus = await leading(redis_server.url, "second", state, clock)
    try:
        health = second.health().details
        assert health["market"] == market.market_id and health["resumedFrom"].startswith("checkpoint at event")
        assert int(health["resumedFrom"].rsplit(" ", 1)[1]) <= published
        expected = reference(market, clock.now)
        await caught_up(second, second_bus, received, len(expected))
        got = [to_dict(e) for e in received.events]
        assert got == expected  # every event of the one market, once, in order
        trades = [e.trade_id for e in received.events if isinstance(e, TradeExecuted)]
        assert trades and len(trades) == len(set(trades))
        assert second_bus.counters["deduplicated"] > 0  # it re-ran events the first had published
    finally:
        await second.stop()
        await second_bus.close()
        await watcher.close()


async def test_a_market_with_other_settings_or_an_unreadable_record_starts_afresh(io_loop: Any) -> None:
    from portfolio_ws.bus.memory import InMemoryBus

    clock = FakeClock(ny("2025-03-03 10:00"))
    state = MemoryState()
    feed = SimulatorFeed(USERS, SETTINGS, clock)
    feed.keep_state(state, interval=5.0)
    await feed.start(InMemoryBus())
    await feed.stop()
    old = Market.decode(state.records["market"])
    other = SimulatorFeed(USERS, settings(seed=12), clock)
    other.keep_state(state, interval=5.0)
    await other.start(InMemoryBus())
    await other.stop()
    assert other.health().details["resumedFrom"] == "new market"
    assert Market.decode(state.records["market"]).market_id != old.market_id
    state.records["market"] = b"\x00not json"
    again = SimulatorFeed(USERS, settings(seed=12), clock)
    again.keep_state(state, interval=5.0)
    await again.start(InMemoryBus())
    await again.stop()
    assert again.health().details["resumedFrom"] == "new market"


class Evil:
    """A pickle that would create ``path`` when loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


async def test_a_hostile_checkpoint_in_redis_is_refused_and_the_market_goes_on_from_its_start(
        io_loop: Any, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Whoever can write Redis puts a pickle in one checkpoint slot and a checkpoint of another
    version in the other: nothing runs, each is logged as refused, and the next leader re-runs the
    market from its seed and clock - clients still get every event of it once."""
    from portfolio_ws.feeds.leader import RedisFeedState

    clock = FakeClock(ny("2025-03-03 10:00"))
    state = RedisFeedState(redis_server.url)
    watcher, received = await watching(redis_server.url, USERS)
    first, first_bus = await leading(redis_server.url, "first", state, clock)
    market = Market.decode(await state.get("market") or b"")
    await advance(clock, first, first_bus, market, 20)  # four saves: both slots hold a checkpoint
    await until(lambda: first._keeper is not None and first._keeper.saves >= 2, TIMEOUT, "two checkpoints saved")
    await first.stop()
    await first_bus.close(drain_seconds=0)
    real = ujson.loads(await state.get("checkpoint-1") or b"")
    assert Checkpoint.decode(ujson.dumps(real).encode()).published > 0  # a real one reads back
    marker = tmp_path / "ran"
    await state.put("checkpoint-0", pickle.dumps(Evil(str(marker))))
    await state.put("checkpoint-1", ujson.dumps({**real, "version": real["version"] + 1}).encode())

    with caplog.at_level(logging.ERROR, logger="simulator.resume"):
        second, second_bus = await leading(redis_server.url, "second", state, clock)
    try:
        assert not marker.exists()  # the pickle was never loaded
        refused = [r.getMessage() for r in caplog.records if r.name == "simulator.resume"]
        assert any("checkpoint-0 is unreadable" in m and "not JSON" in m for m in refused), refused
        assert any("checkpoint-1 is unreadable" in m and "version" in m for m in refused), refused
        health = second.health().details
        assert health["market"] == market.market_id and health["resumedFrom"] == "market start"
        expected = reference(market, clock.now)
        await caught_up(second, second_bus, received, len(expected))
        assert [to_dict(e) for e in received.events] == expected  # every event of the market, once
    finally:
        await second.stop()
        await second_bus.close()
        await watcher.close()
        await state.close()


@pytest.mark.slow
async def test_redis_emptied_then_the_leader_lost_still_publishes_each_event_once(
        io_loop: Any, redis_server: RedisServer) -> None:
    """Redis restarted empty (the market, checkpoints and positions gone), the leader went on and
    saved again, then died: its successor still continues the market without repeating anything."""
    from portfolio_ws.feeds.leader import RedisFeedState

    clock = FakeClock(ny("2025-03-03 10:00"))
    state = RedisFeedState(redis_server.url)
    watcher, received = await watching(redis_server.url, USERS, clock=clock)
    first, first_bus = await leading(redis_server.url, "first", state, clock, clock=clock)
    market = Market.decode(await state.get("market") or b"")
    await advance(clock, first, first_bus, market, 20)
    raw = aioredis.Redis.from_url(redis_server.url)
    await raw.flushall()  # as a restart without persistence leaves it (offsets start again at the
    # publish time in ms: the buses' clock is the test's, so they start above the old ones)
    assert await raw.exists(state.key("market")) == 0  # gone from Redis (this node still holds a copy)
    await raw.aclose()
    await advance(clock, first, first_bus, market, 15)  # the leader saves twice more: market, a checkpoint, positions back
    await until(lambda: first._keeper is not None and first._keeper.saves >= 4, TIMEOUT, "four checkpoints saved")
    await first.stop()
    await first_bus.close(drain_seconds=0)
    second, second_bus = await leading(redis_server.url, "second", state, clock, clock=clock)
    try:
        assert second.health().details["resumedFrom"].startswith("checkpoint at event")
        expected = reference(market, clock.now)
        await caught_up(second, second_bus, received, len(expected))
        assert [to_dict(e) for e in received.events] == expected
    finally:
        await second.stop()
        await second_bus.close()
        await watcher.close()
        await state.close()


@pytest.mark.slow
async def test_redis_emptied_and_the_leader_lost_at_once_the_successor_puts_the_positions_back(
        io_loop: Any, redis_server: RedisServer) -> None:
    """Redis restarted empty and the leader died before saving into it: the bus has no user's
    position, yet the successor continues from a checkpoint (the positions record, from this node's
    copy, covers it) and puts the positions back before publishing, so nothing goes out twice."""
    from portfolio_ws.feeds.leader import RedisFeedState

    clock = FakeClock(ny("2025-03-03 10:00"))
    state = RedisFeedState(redis_server.url)  # its copies: what every node holds of the records
    watcher, received = await watching(redis_server.url, USERS, clock=clock)
    first, first_bus = await leading(redis_server.url, "first", state, clock, clock=clock)
    market = Market.decode(await state.get("market") or b"")
    await advance(clock, first, first_bus, market, 20)
    keeper = first._keeper
    assert keeper is not None and keeper.saves >= 2
    # One more save, with everything published on the bus: the positions record then covers every
    # event (events published after the last save are the window a crash re-sends: reliability.md).
    saves, keeper.saved_at = keeper.saves, float("-inf")
    await until(lambda: keeper.saves > saves, TIMEOUT, "one more checkpoint saved")
    await first.stop()
    await first_bus.close(drain_seconds=0)
    raw = aioredis.Redis.from_url(redis_server.url)
    await raw.flushall()
    await raw.aclose()
    clock.now += 15  # the lease runs out; another node takes over
    second, second_bus = await leading(redis_server.url, "second", state, clock, clock=clock)
    try:
        assert second.health().details["resumedFrom"].startswith("checkpoint at event")
        expected = reference(market, clock.now)
        await caught_up(second, second_bus, received, len(expected))
        assert [to_dict(e) for e in received.events] == expected  # nothing twice, nothing lost
        assert sorted(await second_bus.positions(USERS)) == sorted(USERS)  # back on the bus
    finally:
        await second.stop()
        await second_bus.close()
        await watcher.close()
        await state.close()


async def test_a_user_added_later_joins_the_market_and_a_successor_re_runs_the_join(
        io_loop: Any, redis_server: RedisServer) -> None:
    clock = FakeClock(ny("2025-03-03 10:00"))
    state = MemoryState()
    watcher, received = await watching(redis_server.url, [*USERS, "carol"])
    feeds: list[tuple[SimulatorFeed, RedisBus]] = []

    async def run(users: list[str], seconds: int) -> SimulatorFeed:
        feed, bus = await leading(redis_server.url, f"node-{len(feeds)}", state, clock, users)
        feeds.append((feed, bus))
        await advance(clock, feed, bus, Market.decode(state.records["market"]), seconds)
        return feed

    try:
        first = await run(USERS, 10)
        await first.stop()
        second = await run([*USERS, "carol"], 10)  # carol was added to the database meanwhile
        joins = Market.decode(state.records["market"]).joins
        assert [user for _, _, user in joins] == ["carol"]
        assert second.simulation is not None and "carol" in {u.user_id for u in second.simulation.users}
        await second.stop()
        for name in ("checkpoint-0", "checkpoint-1"):  # no checkpoint: the market is re-run from its start
            state.records.pop(name, None)
        third = await run([*USERS, "carol"], 5)
        assert third.health().details["resumedFrom"] == "market start"
        expected = reference(Market.decode(state.records["market"]), clock.now)
        await received.until(len(expected))
        assert [to_dict(e) for e in received.events] == expected  # carol's join included, nothing twice
    finally:
        for feed, bus in feeds:
            await feed.stop()
            await bus.close()
        await watcher.close()


@pytest.mark.slow
async def test_a_successor_told_of_a_user_the_market_has_already_goes_on(io_loop: Any,
                                                                          redis_server: RedisServer) -> None:
    """A node started before carol was added takes the feed over: its poll of the users table then
    finds her, but the market had her join recorded and re-ran it. The second trial saw the feed add
    her twice, its task die on "already simulated" and every user's stream stop, health offline."""
    clock = FakeClock(ny("2025-03-03 10:00"))
    state = MemoryState()
    watcher, received = await watching(redis_server.url, [*USERS, "carol"])
    feeds: list[tuple[SimulatorFeed, RedisBus]] = []

    async def run(users: list[str], seconds: int, added: str = "") -> SimulatorFeed:
        feed, bus = await leading(redis_server.url, f"node-{len(feeds)}", state, clock, users)
        feeds.append((feed, bus))
        if added:
            feed.add_user(added)  # what the feed's poll of the users table does
        await advance(clock, feed, bus, Market.decode(state.records["market"]), seconds)
        return feed

    try:
        first = await run(USERS, 10, added="carol")
        assert [user for _, _, user in Market.decode(state.records["market"]).joins] == ["carol"]
        await first.stop()
        second = await run(USERS, 10, added="carol")  # its list predates her; the market has her
        assert second.health().connected and "lastError" not in second.health().details
        assert [user.user_id for user in second.simulation.users].count("carol") == 1  # type: ignore[union-attr]
        expected = reference(Market.decode(state.records["market"]), clock.now)
        await received.until(len(expected))
        assert [to_dict(e) for e in received.events] == expected  # nothing twice, nothing missing
    finally:
        for feed, bus in feeds:
            await feed.stop()
            await bus.close()
        await watcher.close()


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
def test_a_checkpoint_with_open_orders_and_positions_reads_back_with_their_statuses_and_sides() -> None:
    # Order statuses and sides are constants' str-Enums (issue 12): they read back as those enums.
    sim = Simulation(["user-0", "user-1"], SimulatorSettings(seed=3), ny("2025-03-03 09:30"))
    sim.advance_to(ny("2025-03-03 11:00"))
    before = [e for user in ("user-0", "user-1") for e in sim.state_events(user)]
    kinds = {type(getattr(e, "status", None)) for e in before} | {type(getattr(e, "side", None)) for e in before}
    assert kinds & {OrderStatus, OrderSide, PositionSide}
    again = Checkpoint.decode(Checkpoint("m", 1, {}, sim).encode()).sim
    after = [e for user in ("user-0", "user-1") for e in again.state_events(user)]
    assert after == before
    assert [type(getattr(e, "side", None)) for e in after] == [type(getattr(e, "side", None)) for e in before]
    assert [type(getattr(e, "status", None)) for e in after] == [type(getattr(e, "status", None)) for e in before]


def test_a_positions_record_takes_the_furthest_of_each_user_of_its_own_market_and_refuses_garbage() -> None:
    market = Market("m1", "f", 0.0, 0.0, False, ("ann", "ben", "cat"))
    kept = Positions.decode(Positions("m1", {"ann": 40, "ben": 7}).encode())
    merged = kept.merged(market, {"ann": "m1:12", "ben": "m1:9", "cat": "old:99"})  # cat's: another market
    assert merged == Positions("m1", {"ann": 40, "ben": 9})
    assert merged.of(market) == {"ann": "m1:40", "ben": "m1:9"}
    assert Positions("m0", {"ann": 40}).merged(market, {"ben": "m1:3"}) == Positions("m1", {"ben": 3})
    for raw in (b"\x80", b"[]", b'{"market": "m1"}', b'{"market": "m1", "last": {"ann": "40"}}',
                b'{"market": "m1", "last": {"ann": true}}'):
        with pytest.raises(ValueError, match="not a positions record"):
            Positions.decode(raw)


async def test_a_paused_redis_is_logged_as_a_timeout_not_as_an_empty_reason(
        io_loop: Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Redis frozen (SIGSTOP) while the leader saves: the record can't be read or stored in time, and
    the log line says so. An operator saw `simulator: cannot store market ()`: the timeout's empty text."""
    import os
    import signal

    from portfolio_ws.feeds.leader import RedisFeedState
    from simulator import resume

    monkeypatch.setattr(resume, "IO_TIMEOUT", 0.3)
    state = RedisFeedState(redis_server.url)
    keeper = resume.MarketKeeper(state, 1.0)
    await state.put("market", b"m")  # the connection is made while Redis answers
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        with caplog.at_level(logging.WARNING, logger="simulator.resume"):
            await keeper._put("market", b"x")
            assert await keeper._get("market") is None
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    lines = [r.getMessage() for r in caplog.records if r.name == "simulator.resume"]
    assert lines == ["simulator: cannot store market (no answer within 0.3 s); the next save tries again",
                     "simulator: cannot read market (no answer within 0.3 s)"], lines
