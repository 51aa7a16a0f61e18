"""The feed adapter: publishes the core's events to a bus on the running loop, reports health."""

from __future__ import annotations

import asyncio
from typing import Callable

from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.core.events import AccountUpdate, Event, TradeExecuted
from portfolio_ws.settings import SimulatorSettings
from simulator import Simulation
from simulator.clock import SimClock
from simulator.feed import SimulatorFeed

from .runs import ny

USERS = ["alice", "bob"]


class FakeClock:
    """Real time under the test's control."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Collector:
    """Bus subscriber that wakes the test when ``condition`` over what it received holds."""

    def __init__(self, bus: InMemoryBus) -> None:
        self.events: list[Event] = []
        self._waiters: list[tuple[Callable[[list[Event]], bool], asyncio.Event]] = []
        bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        for condition, flag in self._waiters:
            if condition(self.events):
                flag.set()

    async def until(self, condition: Callable[[list[Event]], bool], timeout: float = 10.0) -> None:
        if condition(self.events):
            return
        flag = asyncio.Event()
        self._waiters.append((condition, flag))
        await asyncio.wait_for(flag.wait(), timeout)


def settings(**knobs: object) -> SimulatorSettings:
    base = dict(seed=11, speed=60.0, step_ms=2, start="2025-03-03T10:00", orders_per_day=300.0)
    base.update(knobs)
    return SimulatorSettings(**base)  # type: ignore[arg-type]


def test_publishes_the_starting_state_then_the_market() -> None:
    async def main() -> None:
        clock = FakeClock(1_000_000.0)
        feed = SimulatorFeed(USERS, settings(), clock)
        bus = InMemoryBus()
        seen = Collector(bus)
        assert feed.health().connected is False
        await feed.start(bus)
        initial = list(seen.events)
        assert {e.user_id for e in initial} == set(USERS)
        assert sum(isinstance(e, AccountUpdate) for e in initial) == 2
        health = feed.health()
        assert health.source == "simulator" and health.connected and health.market_open
        assert health.last_event_at == clock.now
        clock.now += 20  # 20 real seconds at speed 60: 20 simulated minutes
        await seen.until(lambda events: any(isinstance(e, TradeExecuted) for e in events))
        await seen.until(lambda events: feed.simulation is not None and feed.simulation.now == ny("2025-03-03 10:20"))
        await feed.stop()
        await feed.stop()  # idempotent
        assert feed.health().connected is False
        # The adapter adds nothing: it published exactly what the core produces.
        core = Simulation(USERS, settings(), ny("2025-03-03 10:00"))
        expected = core.initial_events() + [e for _, e in core.advance_to(ny("2025-03-03 10:20"))]
        assert seen.events == expected

    asyncio.run(main())


def test_wall_clock_mode_is_quiet_while_the_market_is_closed() -> None:
    async def main() -> None:
        saturday = ny("2025-03-01 12:00")
        clock = FakeClock(saturday)
        feed = SimulatorFeed(USERS, settings(start="wall-clock"), clock)
        bus = InMemoryBus()
        seen = Collector(bus)
        await feed.start(bus)
        started = len(seen.events)
        assert started > 0 and feed.health().market_open is False
        clock.now += 3600
        assert feed.step() == 0 and len(seen.events) == started
        await feed.stop()

    asyncio.run(main())


def test_add_user_publishes_its_state_at_once() -> None:
    async def main() -> None:
        clock = FakeClock(1_000_000.0)
        feed = SimulatorFeed(["alice"], settings(), clock)
        feed.add_user("bob")  # before start: simply one more user
        bus = InMemoryBus()
        seen = Collector(bus)
        await feed.start(bus)
        assert {e.user_id for e in seen.events} == {"alice", "bob"}
        before = len(seen.events)
        feed.add_user("carol")
        carol = [e for e in seen.events[before:]]
        assert carol and {e.user_id for e in carol} == {"carol"} and isinstance(carol[-1], AccountUpdate)
        feed.add_user("carol")  # already there: nothing
        assert len(seen.events) == before + len(carol)
        assert feed.health().details["users"] == 3
        await feed.stop()

    asyncio.run(main())


def test_users_added_while_it_runs_are_read_and_simulated_and_a_failed_read_is_shown() -> None:
    """The users table is read every ``user_poll_seconds``: a new id starts trading (its starting
    state at once), a failed read is named in health and the next read goes on."""
    async def main() -> None:
        table = ["alice"]
        reads = {"n": 0, "fail": False}
        read = asyncio.Event()

        async def users() -> list[str]:
            reads["n"] += 1
            read.set()
            if reads["fail"]:
                raise OSError("database is locked")
            return list(table)

        feed = SimulatorFeed(["alice"], settings(user_poll_seconds=0.01), FakeClock(1_000_000.0), users=users)
        bus = InMemoryBus()
        seen = Collector(bus)
        await feed.start(bus)
        reads["fail"] = True
        read.clear()
        await asyncio.wait_for(read.wait(), 10)
        while "usersError" not in feed.health().details:
            read.clear()
            await asyncio.wait_for(read.wait(), 10)
        assert feed.health().details["usersError"] == "users not read: OSError: database is locked"
        reads["fail"] = False
        table.append("bob")
        await seen.until(lambda events: any(e.user_id == "bob" and isinstance(e, AccountUpdate) for e in events))
        assert "usersError" not in feed.health().details and feed.health().details["users"] == 2
        await feed.stop()

    asyncio.run(main())


def test_a_failing_step_is_reported_and_the_feed_keeps_going() -> None:
    async def main() -> None:
        real = FakeClock(1_000_000.0)
        calls = {"n": 0}
        recovered = asyncio.Event()

        def clock() -> float:
            calls["n"] += 1
            if calls["n"] == 2:  # the first step's clock read
                raise RuntimeError("clock glitch")
            if calls["n"] > 3:
                recovered.set()
            return real()

        feed = SimulatorFeed(USERS, settings(), clock)
        await feed.start(InMemoryBus())
        await asyncio.wait_for(recovered.wait(), 10)
        health = feed.health()
        assert health.connected and health.details["stepErrors"] == 1 and "lastError" not in health.details
        await feed.stop()

    asyncio.run(main())


def test_a_feed_running_behind_catches_up_in_bounded_steps() -> None:
    async def main() -> None:
        clock = FakeClock(1_000_000.0)
        feed = SimulatorFeed(USERS, settings(speed=600.0, step_ms=1000), clock)
        feed.max_events_per_step = 500
        bus = InMemoryBus()
        Collector(bus)
        await feed.start(bus)
        await feed.stop()  # drive it by hand from here
        clock.now += 1  # ten simulated minutes: many steps' worth
        sizes = []
        while feed.simulation is not None and feed.simulation.now < ny("2025-03-03 10:10"):
            sizes.append(feed.step())
            assert feed.health().details["behind"] is (feed.simulation.now < ny("2025-03-03 10:10"))
        assert len(sizes) > 3 and max(sizes) < 500 + 100

    asyncio.run(main())


def test_default_start_is_the_latest_open_so_a_midnight_demo_is_live() -> None:
    midnight = ny("2025-03-04 00:00")
    clock = SimClock.from_settings(SimulatorSettings(), midnight)
    assert clock.start == ny("2025-03-03 09:30")

    async def main() -> None:
        feed = SimulatorFeed(USERS, SimulatorSettings(), FakeClock(midnight))
        await feed.start(InMemoryBus())
        assert feed.health().market_open and feed.simulation is not None
        assert feed.simulation.now == ny("2025-03-03 09:30")
        await feed.stop()

    asyncio.run(main())


def test_pregenerated_events_go_out_on_schedule_as_the_live_ones_would() -> None:
    # simulator.pregenerate_seconds (load tests): the same events at the same simulated times,
    # made at start so generating them is not part of what is measured afterwards.
    async def run(pregenerate: float) -> list[tuple[float, list[Event]]]:
        clock = FakeClock(1_000_000.0)
        feed = SimulatorFeed(USERS, settings(pregenerate_seconds=pregenerate), clock)
        bus = InMemoryBus()
        seen = Collector(bus)
        await feed.start(bus)
        await feed.stop()  # stepped by hand: each step's output is compared
        steps = [(0.0, list(seen.events))]
        for _ in range(12):  # 12 real seconds at speed 60: 12 simulated minutes, 10 pregenerated
            clock.now += 1
            before = len(seen.events)
            feed.step()
            assert feed.simulation is not None
            steps.append((feed.health().details["simulatedTime"], seen.events[before:]))
        return steps

    live = asyncio.run(run(0))
    ahead = asyncio.run(run(600))
    assert [events for _, events in ahead] == [events for _, events in live]
    assert sum(len(events) for _, events in live[1:]) > 50
    assert ahead[5][0] == live[5][0]  # health shows the time users see, not how far it generated
