"""The NYSE calendar: holidays by rule, observance, early closes, DST, session boundaries."""

from __future__ import annotations

from datetime import date, datetime, timezone

import holidays as holiday_calendars
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_ws import market_calendar as cal

from tests.unit.simulator.runs import ny


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


# Published NYSE full-day closures.
KNOWN = {
    2024: ["2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19",
           "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25"],
    2025: ["2025-01-01", "2025-01-09", "2025-01-20", "2025-02-17", "2025-04-18", "2025-05-26",
           "2025-06-19", "2025-07-04", "2025-09-01", "2025-11-27", "2025-12-25"],
    2026: ["2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25", "2026-06-19",
           "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25"],
}


@pytest.mark.parametrize("year", sorted(KNOWN))
def test_holidays_match_the_published_calendar(year: int) -> None:
    assert sorted(cal.holidays(year)) == [date.fromisoformat(d) for d in KNOWN[year]]


@pytest.mark.parametrize("day, name", [
    ("2001-09-11", "World Trade Center"), ("2001-09-12", "World Trade Center"),
    ("2001-09-13", "World Trade Center"), ("2001-09-14", "World Trade Center"),
    ("2004-06-11", "Reagan"), ("2007-01-02", "Ford"), ("2012-10-29", "Sandy"),
    ("2012-10-30", "Sandy"), ("2018-12-05", "Bush"), ("2025-01-09", "Carter"),
])
def test_one_off_closures_have_no_session(day: str, name: str) -> None:
    # No rule predicts these; the calendar once traded through 2001-09-12, 2004-06-11 and 2007-01-02.
    closed = date.fromisoformat(day)
    assert not cal.is_trading_day(closed) and cal.session_on(closed) is None
    assert name in cal.holidays(closed.year)[closed]
    assert cal.next_session(ny(f"{day} 08:00")).day > closed


def test_trading_resumed_after_september_11() -> None:
    assert cal.next_session(ny("2001-09-10 16:00")).day == date(2001, 9, 17)
    assert cal.previous_session(ny("2001-09-16 12:00")).day == date(2001, 9, 10)


@settings(max_examples=400, deadline=None)
@given(st.dates(min_value=date(cal.FIRST_YEAR, 1, 1), max_value=date(cal.LAST_YEAR, 12, 31)))
def test_trading_days_are_the_weekdays_the_package_keeps_open(day: date) -> None:
    closed = day in holiday_calendars.financial_holidays("NYSE", years=day.year)
    assert cal.is_trading_day(day) == (day.weekday() < 5 and not closed)
    session = cal.session_on(day)
    assert (session is not None) == cal.is_trading_day(day)
    if session is not None:  # the session times stay this module's: 09:30 to 16:00 or 13:00
        assert session.open == ny(f"{day} 09:30")
        assert session.close == ny(f"{day} {'13:00' if session.early_close else '16:00'}")


@pytest.mark.parametrize("year", [cal.FIRST_YEAR - 1, cal.LAST_YEAR + 1])
def test_years_the_package_does_not_cover_are_an_error(year: int) -> None:
    # Outside its range the package knows no closures: trading every weekday would be a silent lie.
    with pytest.raises(ValueError, match=f"NYSE calendar covers {cal.FIRST_YEAR}-{cal.LAST_YEAR}"):
        cal.is_trading_day(date(year, 3, 3))


def test_weekend_observance() -> None:
    # New Year's Day on a Saturday is not moved to the Friday before (it would close 31 December).
    assert date(2021, 12, 31) not in cal.holidays(2021) and cal.is_trading_day(date(2021, 12, 31))
    assert date(2022, 1, 1) not in cal.holidays(2022)
    # Sunday holidays close the Monday after; Saturday ones the Friday before.
    assert date(2023, 1, 2) in cal.holidays(2023)
    assert date(2021, 12, 24) in cal.holidays(2021)  # Christmas on a Saturday
    assert date(2027, 6, 18) in cal.holidays(2027)  # Juneteenth on a Saturday
    assert date(2021, 7, 5) in cal.holidays(2021)  # Independence Day on a Sunday


def test_juneteenth_only_from_2022() -> None:
    assert date(2021, 6, 18) not in cal.holidays(2021) and date(2021, 6, 19) not in cal.holidays(2021)
    assert date(2022, 6, 20) in cal.holidays(2022)


def test_weekends_and_holidays_have_no_session() -> None:
    assert cal.session_on(date(2025, 3, 1)) is None  # Saturday
    assert cal.session_on(date(2025, 3, 2)) is None  # Sunday
    assert cal.session_on(date(2025, 4, 18)) is None  # Good Friday
    assert cal.session_on(date(2025, 3, 3)) is not None


@pytest.mark.parametrize("day", ["2024-07-03", "2024-11-29", "2024-12-24", "2025-07-03", "2025-11-28",
                                 "2025-12-24", "2026-11-27", "2026-12-24"])
def test_early_closes_at_one_pm(day: str) -> None:
    session = cal.session_on(date.fromisoformat(day))
    assert session is not None and session.early_close
    assert session.close == ny(f"{day} 13:00") and session.open == ny(f"{day} 09:30")


@pytest.mark.parametrize("day", ["2026-07-02", "2021-12-23", "2022-07-01", "2025-12-23", "2024-11-27"])
def test_no_early_close_when_the_eve_is_not_a_trading_eve(day: str) -> None:
    # July 3 and December 24 close early only when they are themselves trading days.
    session = cal.session_on(date.fromisoformat(day))
    assert session is not None and not session.early_close and session.seconds == 6.5 * 3600


def test_dst_switch_moves_the_open_in_utc() -> None:
    # US DST began Sunday 2025-03-09: the open moves from 14:30Z to 13:30Z.
    before, after = cal.session_on(date(2025, 3, 7)), cal.session_on(date(2025, 3, 10))
    assert before is not None and after is not None
    assert before.open == utc("2025-03-07 14:30") and after.open == utc("2025-03-10 13:30")
    assert before.seconds == after.seconds == 6.5 * 3600
    # ... and back on Sunday 2025-11-02.
    fall = cal.session_on(date(2025, 11, 3))
    assert fall is not None and fall.open == utc("2025-11-03 14:30")
    # The weekend across the switch is one hour shorter than an ordinary one.
    assert after.open - before.close == 2 * 86400 + 17.5 * 3600 - 3600


def test_session_boundaries_open_inclusive_close_exclusive() -> None:
    open_, close = ny("2025-03-03 09:30"), ny("2025-03-03 16:00")
    assert cal.session_at(open_ - 0.001) is None
    assert cal.session_at(open_) is not None and cal.is_open(close - 0.001)
    assert cal.session_at(close) is None


def test_next_and_previous_sessions() -> None:
    assert cal.next_session(ny("2025-03-03 12:00")).day == date(2025, 3, 3)  # in progress
    assert cal.next_session(ny("2025-03-03 16:00")).day == date(2025, 3, 4)  # closed at 16:00
    assert cal.next_session(ny("2025-04-17 16:30")).day == date(2025, 4, 21)  # over Good Friday
    assert cal.latest_open(ny("2025-03-02 00:00")) == ny("2025-02-28 09:30")  # Sunday midnight
    assert cal.latest_open(ny("2025-03-03 09:29")) == ny("2025-02-28 09:30")
    assert cal.latest_open(ny("2025-03-03 09:30")) == ny("2025-03-03 09:30")
    assert cal.latest_open(ny("2025-03-03 22:00")) == ny("2025-03-03 09:30")
