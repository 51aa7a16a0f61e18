"""The NYSE calendar: which days trade, when the regular session opens and closes.

Rule 1: pure functions of dates and epoch seconds; no clock is read here, no pandas.
Rule 2: holidays are computed from the exchange's rules (fixed dates with weekend observance,
nth-weekday holidays, Good Friday from the Easter computus), plus a short table of one-off closures.
Rule 3: the session is 09:30-16:00 America/New_York (13:00 on early-close days); times cross
time zones only through ``zoneinfo``, so DST switch days need no special case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)

# Closures no rule predicts (national days of mourning, weather).
SPECIAL_CLOSURES: dict[date, str] = {
    date(2012, 10, 29): "Hurricane Sandy",
    date(2012, 10, 30): "Hurricane Sandy",
    date(2018, 12, 5): "National Day of Mourning (George H. W. Bush)",
    date(2025, 1, 9): "National Day of Mourning (Jimmy Carter)",
}


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


def easter(year: int) -> date:
    """Western (Gregorian) Easter Sunday: the anonymous Gregorian computus (Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the computus' own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` (Mon=0) of the month; ``n = -1`` is the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """Saturday holidays close the Friday before, Sunday holidays the Monday after."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def holidays(year: int) -> dict[date, str]:
    """The full-day closures (besides weekends) falling in ``year``."""
    out: dict[date, str] = {}
    new_year = date(year, 1, 1)
    # A Saturday New Year's Day is not observed: the Friday before ends the previous year's books.
    if new_year.weekday() != 5:
        out[_observed(new_year)] = "New Year's Day"
    if year >= 1998:
        out[_nth_weekday(year, 1, 0, 3)] = "Martin Luther King Jr. Day"
    out[_nth_weekday(year, 2, 0, 3)] = "Washington's Birthday"
    out[easter(year) - timedelta(days=2)] = "Good Friday"
    out[_nth_weekday(year, 5, 0, -1)] = "Memorial Day"
    if year >= 2022:
        out[_observed(date(year, 6, 19))] = "Juneteenth National Independence Day"
    out[_observed(date(year, 7, 4))] = "Independence Day"
    out[_nth_weekday(year, 9, 0, 1)] = "Labor Day"
    out[_nth_weekday(year, 11, 3, 4)] = "Thanksgiving Day"
    out[_observed(date(year, 12, 25))] = "Christmas Day"
    for day, name in SPECIAL_CLOSURES.items():
        if day.year == year:
            out[day] = name
    return {d: n for d, n in out.items() if d.year == year}


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
