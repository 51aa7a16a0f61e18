"""EquityHistory: a point a minute through the New York day, from account updates' own times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from portfolio_ws.core.equity import EquityHistory

OPEN = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)   # 09:30 New York


def test_one_point_a_minute_first_time_last_value() -> None:
    h = EquityHistory()
    h.record("u", OPEN, Decimal("100000.00"))
    h.record("u", OPEN + timedelta(seconds=20), Decimal("100010.50"))
    h.record("u", OPEN + timedelta(seconds=59), Decimal("100020.25"))
    h.record("u", OPEN + timedelta(seconds=61), Decimal("99990.00"))
    assert h.points("u") == [(OPEN, Decimal("100020.25")), (OPEN + timedelta(seconds=61), Decimal("99990.00"))]
    assert h.points("someone else") == [] and h.day("someone else") is None


def test_a_new_new_york_day_starts_a_new_series_and_late_updates_are_ignored() -> None:
    h = EquityHistory()
    h.record("u", OPEN, Decimal("1.00"))
    h.record("u", OPEN + timedelta(minutes=5), Decimal("2.00"))
    h.record("u", OPEN + timedelta(minutes=3), Decimal("9.00"))                # older than the last point
    assert [v for _, v in h.points("u")] == [Decimal("1.00"), Decimal("2.00")]
    # 23:30 New York is still the same day (04:30 UTC the next day).
    h.record("u", OPEN + timedelta(hours=14), Decimal("3.00"))
    assert h.day("u") == OPEN.date() and len(h.points("u")) == 3
    next_open = OPEN + timedelta(days=1)
    h.record("u", next_open, Decimal("4.00"))
    assert h.points("u") == [(next_open, Decimal("4.00"))]
    h.record("u", OPEN + timedelta(hours=2), Decimal("5.00"))                   # yesterday's, late
    assert h.points("u") == [(next_open, Decimal("4.00"))]


def test_values_are_exact_decimals() -> None:
    h = EquityHistory()
    h.record("u", OPEN, Decimal("319684.57"))
    h.record("u", OPEN + timedelta(minutes=1), Decimal("0.4567"))
    assert [str(v.quantize(Decimal("0.0001"))) for _, v in h.points("u")] == ["319684.5700", "0.4567"]
