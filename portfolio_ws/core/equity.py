"""Each user's equity through the current trading day, one point a minute: what the dashboard's
"equity today" chart draws from the open, however late the page was opened.

Rule 1: sans-I/O. Account updates go in with their own timestamps (the feed's clock, simulated or
real); nothing here reads a clock.
Rule 2: a point per minute: stamped with the minute's first update, holding its last equity.
Rule 3: a day is a New York calendar day; an update from a later day starts a new series, one from
an earlier day or earlier than the last point is ignored (a late delivery).
Rule 4: compact: two integer arrays per user (minute times, equity in 1/10,000 of a dollar, exact
for the wire's 2 or 4 decimals), ~16 bytes a point, ~6 KB for a full session.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from .events import AccountUpdate, Event

NEW_YORK = ZoneInfo("America/New_York")
_UNIT = Decimal("0.0001")


@dataclass
class _Series:
    day: date
    times: array = field(default_factory=lambda: array("d"))      # epoch seconds of each point
    values: array = field(default_factory=lambda: array("q"))     # equity / _UNIT


def units(equity: Decimal) -> int:
    """Equity in 1/10,000 of a dollar, as points keep it."""
    return int(equity.quantize(_UNIT, ROUND_HALF_UP).scaleb(4))


def from_units(value: int) -> Decimal:
    return Decimal(value).scaleb(-4)


class EquityHistory:
    """In one process: taken from the bus (every event passes here). In a cluster each node sees only
    its users' events, so the history lives in Redis instead (``cluster/equity.py``, same contract)."""

    def __init__(self) -> None:
        self._users: dict[str, _Series] = {}

    def take(self, event: Event) -> None:
        """A bus subscriber: each account update's equity, at its own time."""
        if isinstance(event, AccountUpdate):
            self.record(event.user_id, event.timestamp, event.equity)

    def record(self, user_id: str, at: datetime, equity: Decimal) -> None:
        """Take in one account update's equity at its own time ``at`` (aware)."""
        day = at.astimezone(NEW_YORK).date()
        t = at.timestamp()
        value = units(equity)
        series = self._users.get(user_id)
        if series is None or day > series.day:
            series = self._users[user_id] = _Series(day)
        elif day < series.day:
            return
        times, values = series.times, series.values
        if times and t < times[-1]:
            return
        if times and int(t // 60) == int(times[-1] // 60):
            values[-1] = value            # the same minute: its latest equity
        else:
            times.append(t)
            values.append(value)

    def day(self, user_id: str) -> date | None:
        series = self._users.get(user_id)
        return series.day if series is not None else None

    def points(self, user_id: str) -> list[tuple[datetime, Decimal]]:
        """The user's points of their latest day, oldest first."""
        series = self._users.get(user_id)
        if series is None:
            return []
        return [(datetime.fromtimestamp(t, timezone.utc), from_units(v))
                for t, v in zip(series.times, series.values)]

    async def read(self, user_id: str) -> tuple[date | None, list[tuple[datetime, Decimal]]]:
        """The user's latest day and its points (what ``GET /api/portfolio/equity`` serves)."""
        return self.day(user_id), self.points(user_id)

    def forget(self, user_id: str) -> None:
        self._users.pop(user_id, None)
