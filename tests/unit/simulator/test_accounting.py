"""Accounting: average cost, realized and unrealized P&L for longs and shorts, flips, the book."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

from simulator.accounting import Book, Position

AT = datetime(2025, 3, 3, 15, 0, tzinfo=timezone.utc)


def flat() -> Position:
    return Position(0, "AAPL", D(0), D(0), None, None)


def test_long_average_cost_and_realized_pnl() -> None:
    p = flat()
    assert p.apply_fill(D(100), D("10.00"), AT, "s") is None  # opening: no realized P&L
    assert p.apply_fill(D(100), D("12.00"), AT, "s") is None  # adding: none either
    assert p.entry_price == D("11.0000") and p.opened_at == AT
    assert p.apply_fill(D(-50), D("13.00"), AT, "s") == D("100.00")
    assert p.qty == 150 and p.cost == D("1650.00") and p.entry_price == D("11.0000")
    e = p.event("u", D("12.50"))
    assert (e.quantity, e.side, e.market_value, e.unrealized_pnl, e.unrealized_pnl_percent) == (
        D(150), "long", D("1875.00"), D("225.00"), D("13.64"))


def test_short_pnl_has_the_right_sign() -> None:
    p = flat()
    p.apply_fill(D(-100), D("50.00"), AT, "s")
    e = p.event("u", D("45.00"))
    assert (e.quantity, e.side, e.entry_price, e.market_value) == (D(100), "short", D("50.0000"), D("4500.00"))
    assert (e.unrealized_pnl, e.unrealized_pnl_percent) == (D("500.00"), D("10.00"))
    assert p.event("u", D("55.00")).unrealized_pnl == D("-500.00")
    assert p.apply_fill(D(100), D("45.00"), AT, "s") == D("500.00")
    closed = p.event("u", D("45.00"))
    assert (closed.quantity, closed.side, closed.unrealized_pnl, closed.market_value) == (D(0), "short", 0, 0)


def test_a_fill_through_zero_closes_then_opens_the_other_side() -> None:
    p = flat()
    p.apply_fill(D(10), D("100.00"), AT, "a")
    later = datetime(2025, 3, 3, 16, 0, tzinfo=timezone.utc)
    assert p.apply_fill(D(-30), D("110.00"), later, "b") == D("100.00")
    assert p.qty == -20 and p.cost == D("-2200.00") and p.entry_price == D("110.0000")
    assert p.side == "short" and p.opened_at == later and p.strategy_id == "b"


def test_partial_closes_release_cost_to_the_cent_and_stay_exact() -> None:
    p = Position(0, "X", D(3), D("100.00"), AT, None)  # entry 33.3333...
    realized = [p.apply_fill(D(-1), D("40.00"), AT, None) for _ in range(3)]
    assert realized == [D("6.67"), D("6.66"), D("6.67")]  # releases 33.33, 33.34 (half-even), 33.33
    assert sum(realized, D(0)) == D("120.00") - D("100.00") and p.qty == 0 and p.cost == 0


def test_book_cash_equity_buying_power() -> None:
    book = Book(D("10000.00"), D(2))
    book.last_close_equity = D("10000.00")
    book.fill(0, "AAPL", D(10), D("200.00"), AT, None)
    book.fill(1, "MSFT", D(-5), D("400.00"), AT, None)
    assert book.cash == D("10000.00") - D("2000.00") + D("2000.00")
    prices = [D("210.00"), D("390.00")]
    equity, gross = book.valuation(prices)
    assert equity == D("10000.00") + D("2100.00") - D("1950.00") == D("10150.00")
    assert gross == D("4050.00")
    assert book.buying_power(equity, gross) == D("16250.00")  # 2 x 10150 - 4050
    account = book.event("u", prices, AT)
    assert (account.equity, account.portfolio_value, account.day_pnl, account.day_pnl_percent) == (
        D("10150.00"), D("10150.00"), D("150.00"), D("1.50"))
    _, realized = book.fill(0, "AAPL", D(-10), D("210.00"), AT, None)
    assert realized == D("100.00") and 0 not in book.positions


def test_buying_power_floors_at_zero_and_cash_account() -> None:
    leveraged = Book(D("-15000.00"), D(2))
    leveraged.fill(0, "X", D(100), D("200.00"), AT, None)  # 20000 of stock, equity 5000 - 20000
    equity, gross = leveraged.valuation([D("200.00")])
    assert leveraged.buying_power(equity, gross) == 0
    cash_account = Book(D("1000.00"), D(1))
    cash_account.fill(0, "X", D(2), D("100.00"), AT, None)
    assert cash_account.buying_power(*cash_account.valuation([D("100.00")])) == D("800.00")
