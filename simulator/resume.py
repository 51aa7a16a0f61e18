"""Reading and writing a simulated market's records (``checkpoint.py``) in the feed's ``FeedState``.

The records: ``market`` (which market, made how), two checkpoint slots, written in turn, and
``positions`` (each user's position on the bus as the leader last read it). A checkpoint taken at
one save is stored at the next, by when the bus has sent the events it covers; a new leader still
checks that (``Checkpoint.covered_by``, against the bus's positions and the ``positions`` record,
the furthest of each) and otherwise takes the other slot, or the market's start: slower, never
wrong. Positions the bus lost (Redis restarted empty) are put back from the record, by the leader at
each save and by a new leader before it publishes anything, so the bus refuses again what it took. A record that is not a checkpoint of this version (garbage,
a pickle, another build's) is refused with one ERROR line naming the slot and why, and skipped the
same way. Taking a checkpoint stops the IOLoop for as long as encoding it takes (``checkpoint_cost``
in docs/scaling.md), so saves are spaced at least 50 times that apart.
"""

from __future__ import annotations

import asyncio
import logging
import time

from portfolio_ws.bus import EventBus
from portfolio_ws.feeds import FeedState
from portfolio_ws.settings import SimulatorSettings

from .checkpoint import Checkpoint, Market, Positions, fingerprint
from .clock import SimClock

log = logging.getLogger(__name__)

IO_TIMEOUT = 5.0  # seconds for one record to be read or written; then the feed goes on without
SLOTS = ("checkpoint-0", "checkpoint-1")
POSITIONS = "positions"
MAX_SHARE = 0.02  # of the loop's time that taking checkpoints may use


def _why(exc: Exception) -> str:
    """What went wrong, for the log: a store that did not answer in time says so (a timeout's own
    text is empty: operators saw `cannot store market ()` while Redis was paused)."""
    if isinstance(exc, TimeoutError):  # asyncio.wait_for's
        return f"no answer within {IO_TIMEOUT:g} s"
    return str(exc) or type(exc).__name__


class MarketKeeper:
    def __init__(self, state: FeedState, interval: float) -> None:
        self.state = state
        self.interval = interval
        self._taken: bytes | None = None  # taken at the last save; stored at the next one
        self._slot = 0
        self.saved_at = float("-inf")
        self.saves = 0
        self.known = Positions("", {})  # the furthest positions read on the bus, of the market run

    async def _get(self, name: str) -> bytes | None:
        try:
            return await asyncio.wait_for(self.state.get(name), IO_TIMEOUT)
        except Exception as exc:  # a store that can't answer: start from what we can
            log.warning("simulator: cannot read %s (%s)", name, _why(exc))
            return None

    async def _put(self, name: str, value: bytes) -> None:
        try:
            await asyncio.wait_for(self.state.put(name, value), IO_TIMEOUT)
        except Exception as exc:
            log.warning("simulator: cannot store %s (%s); the next save tries again", name, _why(exc))

    async def open(self, bus: EventBus, settings: SimulatorSettings, users: list[str],
                   now: float) -> tuple[Market, Checkpoint | None, str]:
        """The market to run (the stored one, or a new one), the checkpoint to start from (None: the
        market's start), and how it was resumed, for health."""
        raw = await self._get("market")
        market: Market | None = None
        if raw is not None:
            try:
                market = Market.decode(raw)
            except ValueError as exc:
                log.error("simulator: the stored market is unreadable (%s); starting a new one", exc)
        if market is not None and market.fingerprint != fingerprint(settings):
            log.warning("simulator: the stored market was made with other simulator settings; starting a new one")
            market = None
        if market is None:
            clock = SimClock.from_settings(settings, now)
            market = Market.new(settings, clock.start, now, clock.wall_clock, users)
            await self._put("market", market.encode())
            return market, None, "new market"
        positions = await self._positions(bus, market)
        best: Checkpoint | None = None
        for name in SLOTS:
            raw = await self._get(name)
            if raw is None:
                continue
            try:
                checkpoint = Checkpoint.decode(raw)
            except ValueError as exc:
                log.error("simulator: %s is unreadable and refused (%s); resuming from the other "
                          "checkpoint or the market's start", name, str(exc)[:200])
                continue
            if checkpoint.covered_by(market, positions) and (best is None or checkpoint.published > best.published):
                best = checkpoint
        how = f"checkpoint at event {best.published}" if best else "market start"
        log.info("simulator: continuing market %s from its %s", market.market_id, how)
        return market, best, how

    async def _positions(self, bus: EventBus, market: Market) -> dict[str, str]:
        """The positions a checkpoint must be covered by: the bus's and the record's, the furthest of
        each, after putting back on the bus those it lacks (before anything is published, so that it
        refuses again what it had taken). None when that fails: never a checkpoint the bus would
        not back."""
        raw = await self._get(POSITIONS)
        self.known = Positions(market.market_id, {})
        if raw is not None:
            try:
                self.known = Positions.decode(raw)
            except ValueError as exc:
                log.error("simulator: the positions record is unreadable and refused (%s)", str(exc)[:200])
        try:
            await self._put_back(bus, market)
        except Exception as exc:  # without them no checkpoint is known safe: replay the market
            log.warning("simulator: cannot read or put back the users' positions (%s); replaying the market", exc)
            return {}
        return self.known.of(market)

    async def _put_back(self, bus: EventBus, market: Market) -> None:
        """Read the bus's positions into ``known``, and put back on the bus those it lacks."""
        on_bus = await asyncio.wait_for(bus.positions(sorted(market.all_users)), IO_TIMEOUT)
        self.known = self.known.merged(market, on_bus)
        missing = {user: p for user, p in self.known.of(market).items() if user not in on_bus}
        if missing:
            log.warning("simulator: the bus lacks the positions of %d user(s) (Redis lost them); putting "
                        "them back from the positions record", len(missing))
            await asyncio.wait_for(bus.restore_positions(missing), IO_TIMEOUT)

    async def record(self, market: Market) -> bool:
        """Store the market record now (before users it names as joining are simulated)."""
        try:
            await asyncio.wait_for(self.state.put("market", market.encode()), IO_TIMEOUT)
            return True
        except Exception as exc:
            log.warning("simulator: cannot store the market (%s); users join later", _why(exc))
            return False

    def due(self, now: float) -> bool:
        return now - self.saved_at >= self.interval

    async def save(self, market: Market, checkpoint: Checkpoint, bus: EventBus, now: float) -> None:
        """Store the checkpoint taken last time, and take ``checkpoint`` for next time. The market
        record is written again each time, and the users' positions as the bus has them now (those it
        lost put back first from what was read before: Redis may have restarted empty), before the
        checkpoint they cover: a successor needs all three."""
        self.saved_at = now
        started = time.perf_counter()
        previous, self._taken = self._taken, checkpoint.encode()
        took = time.perf_counter() - started
        self.interval = max(self.interval, took / MAX_SHARE)
        await self._put("market", market.encode())
        await self._keep_positions(bus, market)
        if previous is not None:
            await self._put(SLOTS[self._slot], previous)
            self._slot ^= 1
            self.saves += 1

    async def _keep_positions(self, bus: EventBus, market: Market) -> None:
        try:
            await self._put_back(bus, market)
        except Exception as exc:
            log.warning("simulator: cannot read or put back the users' positions (%s); the next save tries "
                        "again", exc)
            return
        await self._put(POSITIONS, self.known.encode())
