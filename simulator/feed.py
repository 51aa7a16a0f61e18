"""The simulator as a ``Feed``: drives the sans-I/O ``Simulation`` from the IOLoop and publishes.

Rule 1: thin. Every ``settings.step_ms`` of real time, read the injected clock, map it to simulated
time (``SimClock``), advance the simulation there, publish what came out, in order.
Rule 2: never raise out of the background task: a failed step is logged and shown in ``health()``,
and the next step tries again.
Rule 3: in a cluster (``keep_state``) the market outlives the node running it: each event goes out
with its position in the market (``checkpoint.Market``), checkpoints are saved as it runs, and a
feed started on another node continues the same market from the newest safe checkpoint
(``resume.MarketKeeper``) instead of starting another day; the bus refuses what was already out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from typing import Awaitable, Callable, Iterable

from portfolio_ws.bus import EventBus
from portfolio_ws.core.events import Event
from portfolio_ws.core.wire import epoch_timestamp
from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds import Feed, FeedState
from portfolio_ws.settings import SimulatorSettings

from .checkpoint import Checkpoint, Market
from .clock import SimClock
from .engine import Simulation, TimedEvent
from .resume import MarketKeeper

log = logging.getLogger(__name__)

# Events published per step at most (give or take one action's worth); then the loop gets a turn.
MAX_EVENTS_PER_STEP = 20_000


class SimulatorFeed(Feed):
    """Simulated portfolios for ``user_ids``. ``clock`` returns real epoch seconds (injected for tests)."""

    source = "simulator"
    max_events_per_step = MAX_EVENTS_PER_STEP

    def __init__(self, user_ids: list[str], settings: SimulatorSettings,
                 clock: Callable[[], float] = time.time,
                 users: Callable[[], Awaitable[Iterable[str]]] | None = None) -> None:
        """``users``: every user id there is now (the users table), read every
        ``settings.user_poll_seconds`` while the feed runs: a user added meanwhile starts trading."""
        self._user_ids = dict.fromkeys(user_ids)  # in order; a dict, so the users poll's lookups are O(1)
        self._users = users
        self._watch: asyncio.Task[None] | None = None
        self._users_error: str | None = None
        self._settings = settings
        self._clock = clock
        self._bus: EventBus | None = None
        self._sim_clock: SimClock | None = None
        self._sim: Simulation | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_event_at: float | None = None
        self._events = 0
        self._error: str | None = None
        self._failures = 0
        self._behind = False
        # settings.pregenerate_seconds: events made at start, published when their time comes.
        self._ahead: deque[TimedEvent] = deque()
        self._ahead_to = 0.0  # the simulated time published up to, while events are ahead
        self._keeper: MarketKeeper | None = None  # cluster mode: where the market is kept
        self._market: Market | None = None
        self._ordinal = 0  # events of the market handed to the bus
        self._last_of: dict[str, int] = {}  # user -> ordinal of its last event
        self._resumed = ""
        self._joins: list[tuple[int, float, str]] = []  # joins of the market still to re-run
        self._newcomers: list[str] = []  # users to add to the market once caught up (cluster mode)

    def keep_state(self, state: FeedState, interval: float) -> None:
        self._keeper = MarketKeeper(state, interval)

    @property
    def simulation(self) -> Simulation | None:
        """The running core (None before ``start``), for inspection; drive it only through the feed."""
        return self._sim

    async def start(self, bus: EventBus) -> None:
        """Publish every user's starting state, then keep stepping on the running loop."""
        if self._task is not None:
            return
        now = self._clock()
        self._bus = bus
        checkpoint: Checkpoint | None = None
        if self._keeper is not None:
            market, checkpoint, self._resumed = await self._keeper.open(bus, self._settings, list(self._user_ids), now)
            now = self._clock()
        else:
            clock = SimClock.from_settings(self._settings, now)
            market = Market.new(self._settings, clock.start, now, clock.wall_clock, list(self._user_ids))
            self._resumed = "new market"
        self._market = market
        if market.wall_clock:
            self._sim_clock = SimClock(market.real_start, market.real_start, 1.0, skip_closed=False, wall_clock=True)
        else:
            self._sim_clock = SimClock(market.sim_start, market.real_start, self._settings.speed,
                                       self._settings.skip_closed)
        if checkpoint is not None:
            self._sim, self._ordinal, self._last_of = checkpoint.sim, checkpoint.published, dict(checkpoint.last)
            self._ahead, self._ahead_to = checkpoint.ahead, checkpoint.ahead_to
        else:
            self._sim, self._ordinal, self._last_of = Simulation(market.users, self._settings, market.sim_start), 0, {}
            self._publish(self._sim.initial_events(), now)
            if self._settings.pregenerate_seconds > 0:
                self._ahead = deque(self._sim.advance_to(market.sim_start + self._settings.pregenerate_seconds))
                self._ahead_to = market.sim_start
        simulated = {user.user_id for user in self._sim.users}
        self._joins = [join for join in market.joins if join[2] not in simulated]
        self._newcomers = [u for u in self._user_ids if u not in market.all_users]
        if self._newcomers and self._settings.pregenerate_seconds > 0:
            log.warning("simulator: %d user(s) added since market %s began are not simulated (events "
                        "are pregenerated)", len(self._newcomers), market.market_id)
            self._newcomers = []
        if self._keeper is not None:
            self._keeper.saved_at = now  # the first checkpoint one interval from now
        self._task = asyncio.get_running_loop().create_task(self._run(), name="simulator-feed")
        if self._users is not None and self._settings.user_poll_seconds > 0 and not self._ahead:
            self._watch = asyncio.get_running_loop().create_task(self._watch_users(), name="simulator-users")

    async def stop(self) -> None:
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._watch = None

    async def _watch_users(self) -> None:
        """Read the users table every ``user_poll_seconds``; a user not simulated yet is added
        (``add_user``: at once, or in cluster mode recorded in the market first). A failed read is
        logged once and shown in health; the next poll tries again. Removed users are left alone."""
        assert self._users is not None
        while True:
            await asyncio.sleep(self._settings.user_poll_seconds)
            try:
                found = list(await self._users())
            except Exception as exc:  # the database away: the users simulated go on
                error = f"users not read: {type(exc).__name__}: {exc}"
                if error != self._users_error:
                    log.error("simulator: %s", error)
                self._users_error = error
                continue
            self._users_error = None
            for user_id in found:
                if user_id not in self._user_ids:
                    log.info("simulator: user %s added while running: simulated from now on", user_id)
                    self.add_user(user_id)

    def health(self) -> FeedHealth:
        sim = self._sim
        details: dict[str, object] = {"users": len(self._user_ids), "events": self._events,
                                      "stepErrors": self._failures, "behind": self._behind}
        if self._market is not None:
            details.update(market=self._market.market_id, marketEvents=self._ordinal, resumedFrom=self._resumed)
        if sim is not None:
            # Pregenerated events not yet published are ahead of the simulated time users see.
            details["simulatedTime"] = epoch_timestamp(self._ahead_to if self._ahead else sim.now)
            details["speed"] = 1.0 if self._sim_clock and self._sim_clock.wall_clock else self._settings.speed
        if self._error:
            details["lastError"] = self._error
        if self._users_error:
            details["usersError"] = self._users_error
        return FeedHealth(source=self.source, connected=self._task is not None and not self._task.done(),
                          last_event_at=self._last_event_at,
                          market_open=sim.market_open if sim is not None else False, details=details)

    def add_user(self, user_id: str) -> None:
        """Simulate one more user from now on (its starting state is published at once)."""
        if user_id in self._user_ids:
            return
        self._user_ids[user_id] = None
        if self._market is not None and user_id in self._market.all_users:
            return  # the market has the user already (a join a former leader recorded: re-run, or due)
        if self._keeper is not None and self._sim is not None:  # recorded in the market first
            self._newcomers.append(user_id)
        elif self._sim is not None:
            self._publish(self._sim.add_user(user_id), self._clock())

    def step(self) -> int:
        """Advance toward the clock's current time and publish; returns how many events went out.
        At most about ``max_events_per_step`` go out per call, so a simulation running behind
        never holds the IOLoop for long: it catches up over the following steps."""
        if self._sim is None or self._sim_clock is None:
            return 0
        now = self._clock()
        target = self._sim_clock.sim_time(now)
        if self._ahead:
            return self._publish_ahead(target, now)
        if self._joins and target >= self._joins[0][1]:
            return self._rejoin(now)
        events = self._sim.advance_to(target, limit=self.max_events_per_step)
        self._behind = self._sim.now < target
        self._publish([event for _, event in events], now)
        return len(events)

    async def _keep_market(self) -> None:
        """Cluster mode: add the users waiting to join once caught up, and save a checkpoint when due."""
        keeper, market, sim = self._keeper, self._market, self._sim
        if keeper is None or market is None or sim is None:
            return
        if self._newcomers and not self._behind and not self._joins:
            await self._join_newcomers(keeper, market, sim)
        if keeper.due(self._clock()):
            assert self._bus is not None
            await keeper.save(market, Checkpoint(market.market_id, self._ordinal, dict(self._last_of), sim,
                                                 self._ahead, self._ahead_to), self._bus, self._clock())

    def _rejoin(self, now: float) -> int:
        """Re-run a recorded join: the market fully up to its time, then the user added."""
        assert self._sim is not None
        ordinal, at, user = self._joins.pop(0)
        events = [event for _, event in self._sim.advance_to(at)]
        self._publish(events, now)
        if self._ordinal != ordinal:  # the same market run the same way can't differ: say so if it does
            log.error("simulator: re-running market %s, %s joined after event %d, not %d",
                      self._market.market_id if self._market else "?", user, self._ordinal, ordinal)
        self._publish(self._sim.add_user(user), now)
        return len(events)

    async def _join_newcomers(self, keeper: MarketKeeper, market: Market, sim: Simulation) -> None:
        """Add a user the market doesn't have yet (one a turn), at a point a successor finds again:
        the market run fully up to now, the join recorded before any of the user's events go out."""
        now = self._clock()
        self._publish([event for _, event in sim.advance_to(sim.now)], now)  # all of "now", none cut off
        user, at = self._newcomers[0], sim.now
        updated = dataclasses.replace(market, joins=(*market.joins, (self._ordinal, at, user)))
        if not await keeper.record(updated):
            return  # tried again next turn
        if self._market is not market or self._sim is not sim:
            return  # stopped meanwhile: whoever runs the market next re-runs the join recorded
        self._market = updated
        self._newcomers.pop(0)
        self._publish(sim.add_user(user), now)
        log.info("simulator: user %s joined market %s", user, market.market_id)

    def _publish_ahead(self, target: float, now: float) -> int:
        ahead = self._ahead
        due: list[Event] = []
        while ahead and ahead[0][0] <= target and len(due) < self.max_events_per_step:
            due.append(ahead.popleft()[1])
        self._behind = bool(ahead) and ahead[0][0] <= target
        self._ahead_to = target
        self._publish(due, now)
        return len(due)

    def _publish(self, events: list[Event], now: float) -> None:
        bus, market = self._bus, self._market
        if bus is None or market is None or not events:
            return
        n, last_of = self._ordinal, self._last_of
        for event in events:
            n += 1
            last_of[event.user_id] = n
            bus.publish(event, market.position(n))
        self._ordinal = n
        self._events += len(events)
        self._last_event_at = now

    async def _run(self) -> None:
        interval = self._settings.step_ms / 1000.0
        while True:
            try:
                self.step()
                self._error = None
            except Exception as exc:  # keep the feed alive; health() shows what went wrong
                self._error = f"{type(exc).__name__}: {exc}"
                self._failures += 1
                log.exception("simulator step failed")
            try:
                await self._keep_market()
            except Exception as exc:  # a join or a save that failed is tried again next turn; never the end
                self._error = f"{type(exc).__name__}: {exc}"
                self._failures += 1
                log.exception("simulator: keeping the market failed")
            await asyncio.sleep(0 if self._behind else interval)
