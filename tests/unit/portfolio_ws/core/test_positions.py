"""Position accounting (issue 12: one module for the simulator and the Alpaca feed): the API
document's rule for percentages (2 decimals, half-up, from exact figures), and both feeds giving
the same figures for the same fills and price."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from portfolio_ws.constants import PositionSide
from portfolio_ws.core import positions as accounting
from portfolio_ws.core import wire
from portfolio_ws.core.events import AccountUpdate, PositionUpdate
from portfolio_ws.feeds.alpaca.state import AccountState
from simulator.accounting import Book
from tests.alpaca_events import ACCOUNT, NOW, fill

D = Decimal
AT = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("part, base, shown", [
    (D("6.01"), D("200.00"), D("3.01")),     # 3.005: half-up, not half-even (3.00)
    (D("-6.01"), D("200.00"), D("-3.01")),   # half-up is away from zero for losses too
    (D("6.17"), D("200.00"), D("3.09")),     # 3.085
    (D("1"), D("3"), D("33.33")),
    (D("5"), D("0"), D("0")),                # no base, no percent
    (D("5"), D("-100"), D("0")),             # a negative base (equity below zero) has no percent
])
def test_percent_is_two_decimals_half_up(part, base, shown):
    assert accounting.percent(part, base) == shown
    assert str(accounting.percent(part, base)) == (f"{shown:.2f}" if shown else "0")


def test_a_short_position_is_valued_with_an_unsigned_quantity_and_market_value():
    f = accounting.figures(D(-100), D("-5000.00"), D("45.00"))
    assert (f.quantity, f.side, f.entry_price, f.market_value) == (D(100), PositionSide.SHORT, D(50), D("4500.00"))
    assert (f.unrealized_pnl, f.unrealized_pnl_percent) == (D("500.00"), D("10.00"))


def test_closing_part_releases_its_share_of_the_cost_to_the_cent():
    # 3 shares cost 200.00; selling 1 at 70.00 releases 66.67 (half-even), realizing 3.33.
    assert accounting.close_part(D(3), D("200.00"), D(1), D("70.00")) == (D("3.33"), D("66.67"))
    assert accounting.close_part(D(3), D("200.00"), D(3), D("70.00")) == (D("10.00"), D("200.00"))
    # A short of 2 costing -100.00 covered at 40.00: +20.00.
    assert accounting.close_part(D(-2), D("-100.00"), D(2), D("40.00")) == (D("20.00"), D("-100.00"))


# Buy 1 at 66.66 and 2 at 66.67: cost 200.00, an average of 66.666...7 that no Decimal holds
# exactly. At 68.67 the position is up 6.01, 3.005 %: the API document shows "3.01". The Alpaca
# state used to carry the rounded average and get 6.0099...9 / 200.00...0 = 3.0049...: "3.00".
def _simulator() -> PositionUpdate:
    book = Book(D("100000"), D(2))
    book.fill(0, "AAPL", D(1), D("66.66"), AT, None)
    position, _ = book.fill(0, "AAPL", D(2), D("66.67"), AT, None)
    return position.event("alice", D("68.67"))


def _alpaca() -> PositionUpdate:
    state = AccountState("alice")
    state.apply_rest(ACCOUNT, [], NOW, keep_stream_prices=False)
    state.apply_trade_update(fill("o1", "buy", "1", "66.66", "1", "1", "1"), NOW)
    state.apply_trade_update(fill("o2", "buy", "2", "66.67", "3", "2", "2"), NOW)
    [event] = state.apply_price("AAPL", D("68.67"))
    assert isinstance(event, PositionUpdate)
    return event


@pytest.mark.parametrize("make", [_simulator, _alpaca], ids=["simulator", "alpaca"])
def test_both_feeds_show_the_documented_percent_where_the_roundings_used_to_differ(make):
    event = make()
    assert event.unrealized_pnl == D("6.01")
    assert event.unrealized_pnl_percent == D("3.01")
    payload = wire.position_payload(event)
    assert (payload["unrealizedPnlPercent"], payload["unrealizedPnl"], payload["entryPrice"],
            payload["marketValue"]) == ("3.01", "6.01", "66.67", "206.01")


def test_the_simulator_and_alpaca_make_the_same_position_from_the_same_fills():
    sim, alpaca = _simulator(), _alpaca()
    fields = ("quantity", "side", "entry_price", "market_value", "unrealized_pnl", "unrealized_pnl_percent")
    assert {f: getattr(sim, f) for f in fields} == {f: getattr(alpaca, f) for f in fields}


def test_both_feeds_round_the_day_percent_alike():
    # Day P&L 6.01 on 200.00 of last-close equity: 3.005 % -> "3.01" from both.
    book = Book(D("206.01"), D(1))
    book.last_close_equity = D("200.00")
    assert book.event("alice", [], AT).day_pnl_percent == D("3.01")
    state = AccountState("alice")
    [account] = state.apply_rest({**ACCOUNT, "cash": "206.01", "last_equity": "200.00"}, [], NOW,
                                 keep_stream_prices=False)
    assert isinstance(account, AccountUpdate) and account.day_pnl_percent == D("3.01")
