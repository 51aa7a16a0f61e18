"""The NYSE calendar: which days trade, when the regular session opens and closes.

Rule 1: pure functions of dates and epoch seconds; no clock is read here, no pandas.
Rule 2: full-day closures come from the ``holidays`` package's NYSE calendar (its rules plus the
one-off closures no rule predicts: 2001-09-11..14, days of mourning, Hurricane Sandy); it covers
1863-2100, and a date outside that raises ``ValueError`` rather than trading every weekday.
Rule 3: the session is 09:30-16:00 America/New_York (13:00 on early-close days, by rule here:
``holidays`` lists closures only); times cross time zones only through ``zoneinfo``, so DST
switch days need no special case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from holidays import NYSE

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
FIRST_YEAR, LAST_YEAR = NYSE.start_year, NYSE.end_year


@dataclass(frozen=True, slots=True)
class Session:
    """One regular trading session. ``open``/``close`` are epoch seconds."""

    day: date
    open: float
    close: float

    @property
    def early_close(self) -> bool:
        return datetime.fromtimestamp(self.close, NEW_YORK).time() != CLOSE

    def contains(self, t: float) -> bool:
        """True while trading: open <= t < close."""
        return self.open <= t < self.close

    @property
    def seconds(self) -> float:
        return self.close - self.open


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` (Mon=0) of the month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


@lru_cache(maxsize=64)
def holidays(year: int) -> dict[date, str]:
    """The full-day closures (besides weekends) falling in ``year``.

    Raises ValueError outside FIRST_YEAR..LAST_YEAR, where the package knows no closures.
    """
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"the NYSE calendar covers {FIRST_YEAR}-{LAST_YEAR}, not {year}")
    return {day: name for day, name in NYSE(years=year).items() if day.year == year}


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def is_early_close(day: date) -> bool:
    """13:00 closes: July 3, the day after Thanksgiving, December 24 (each only on a trading day)."""
    if not is_trading_day(day):
        return False
    if day == _nth_weekday(day.year, 11, 3, 4) + timedelta(days=1):
        return True
    return (day.month, day.day) in ((7, 3), (12, 24))


def _epoch(day: date, at: time) -> float:
    return datetime.combine(day, at, NEW_YORK).timestamp()


@lru_cache(maxsize=4096)
def session_on(day: date) -> Session | None:
    """The session of ``day`` (a New York calendar date), or None when the exchange is closed."""
    if not is_trading_day(day):
        return None
    close = EARLY_CLOSE if is_early_close(day) else CLOSE
    return Session(day, _epoch(day, OPEN), _epoch(day, close))


def local_date(t: float) -> date:
    """The New York calendar date at epoch ``t``."""
    return datetime.fromtimestamp(t, NEW_YORK).date()


def session_at(t: float) -> Session | None:
    """The session in progress at ``t``, or None while closed."""
    session = session_on(local_date(t))
    return session if session is not None and session.contains(t) else None


def is_open(t: float) -> bool:
    return session_at(t) is not None


def next_session(t: float) -> Session:
    """The first session whose close is after ``t``: the one in progress, or the next to open."""
    day = local_date(t)
    while True:
        session = session_on(day)
        if session is not None and session.close > t:
            return session
        day += timedelta(days=1)


def previous_session(t: float) -> Session:
    """The last session that opened at or before ``t`` (possibly still in progress)."""
    day = local_date(t)
    while True:
        session = session_on(day)
        if session is not None and session.open <= t:
            return session
        day -= timedelta(days=1)


def latest_open(t: float) -> float:
    """Epoch seconds of the latest session open at or before ``t``."""
    return previous_session(t).open
