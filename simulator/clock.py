"""The simulated clock: which simulated moment corresponds to a real (wall) moment.

Rule 1: pure. The real time is passed in (epoch seconds from the injected clock), never read here.
Rule 2: three ways to start (``settings.start``): ``latest-open`` (the latest session open at or
before now, so a demo at midnight still shows a live market), an ISO 8601 time (a naive one is
New York time), or ``wall-clock`` (simulated time is real time: quiet while the market is closed).
Rule 3: in simulated time, ``speed`` simulated seconds pass per real second; with ``skip_closed``
only session time is consumed, and closed hours pass in an instant (the close is still reached,
then the next open follows at once).
"""

from __future__ import annotations

from datetime import datetime

from portfolio_ws import settings_rules
from portfolio_ws.errors import ConfigError
from portfolio_ws.settings_rules import LATEST_OPEN, WALL_CLOCK
from portfolio_ws.settings import SimulatorSettings

from portfolio_ws import market_calendar as cal



def parse_start(start: str, now: float) -> float:
    """Simulated start time, epoch seconds, for ``settings.start`` (not ``wall-clock``) at real ``now``."""
    moment = settings_rules.parse_start(start)
    if moment == WALL_CLOCK:
        raise ConfigError("simulator.start", "wall-clock follows real time: use SimClock.from_settings")
    if isinstance(moment, datetime):  # within the calendar's years (settings_rules checks it)
        return moment.timestamp()
    return cal.latest_open(now)


class SimClock:
    """Maps real epoch seconds to simulated epoch seconds. Real time must not go backwards."""

    def __init__(self, sim_start: float, real_start: float, speed: float = 1.0, skip_closed: bool = True,
                 wall_clock: bool = False) -> None:
        if speed <= 0:
            raise ConfigError("simulator.speed", f"must be greater than 0, got {speed!r}")
        self.speed = speed
        self.skip_closed = skip_closed
        self.wall_clock = wall_clock
        self._real = real_start
        self._sim = real_start if wall_clock else sim_start

    @classmethod
    def from_settings(cls, settings: SimulatorSettings, now: float) -> SimClock:
        if settings.start.strip().lower() == WALL_CLOCK:
            return cls(now, now, 1.0, skip_closed=False, wall_clock=True)
        return cls(parse_start(settings.start, now), now, settings.speed, settings.skip_closed)

    @property
    def start(self) -> float:
        return self._sim

    def sim_time(self, real: float) -> float:
        """The simulated time at real time ``real`` (monotonic: an earlier ``real`` changes nothing)."""
        if self.wall_clock:
            self._real = self._sim = max(self._sim, real)
            return self._sim
        budget = (real - self._real) * self.speed
        if budget <= 0:
            return self._sim
        self._real = real
        if not self.skip_closed:
            self._sim += budget
            return self._sim
        t = self._sim
        while budget > 0:
            session = cal.next_session(t)  # in progress, or the next one
            t = max(t, session.open)  # closed hours are free
            room = session.close - t
            if budget <= room:
                t += budget
                break
            budget -= room
            t = session.close
        self._sim = t
        return t
