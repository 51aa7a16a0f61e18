"""Per-user state behind snapshots: open positions, open and today's closed orders, the account,
and today's trades (at most 100, newest last). A new New York trading day prunes the rest."""

from __future__ import annotations

from datetime import datetime, timezone

from portfolio_ws.core.portfolio import PortfolioState, trading_day
from tests.builders import T0, account, later, order, position, trade

ALL = ["positions", "orders", "account", "trades"]
NEXT_DAY = datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc)


def state_of(*events: object) -> PortfolioState:
    state = PortfolioState()
    for event in events:
        state.apply(event)  # type: ignore[arg-type]
    return state


def test_empty_state_snapshot() -> None:
    assert PortfolioState().snapshot(ALL) == {"positions": [], "orders": [], "account": None, "trades": []}


def test_snapshot_holds_just_the_requested_channels() -> None:
    state = state_of(position(), account())
    assert list(state.snapshot(["account"])) == ["account"]
    assert list(state.snapshot(["trades", "positions"])) == ["positions", "trades"]
    assert state.snapshot([]) == {}


def test_positions_are_the_open_ones_latest_value() -> None:
    state = state_of(position(symbol="MSFT"), position(symbol="AAPL", price="170.00"),
                     position(symbol="AAPL", price="180.00"), position(symbol="TSLA"),
                     position(symbol="TSLA", qty="0"))
    positions = state.snapshot(["positions"])["positions"]
    assert [(p["symbol"], p["currentPrice"]) for p in positions] == [("AAPL", "180.00"), ("MSFT", "175.50")]


def test_closed_position_reopened() -> None:
    state = state_of(position(qty="0"), position(qty="5"))
    assert [p["quantity"] for p in state.snapshot(["positions"])["positions"]] == ["5"]


def test_account_is_the_latest() -> None:
    state = state_of(account(equity="1.00"), account(equity="2.00"))
    assert state.snapshot(["account"])["account"]["equity"] == "2.00"


def test_orders_open_and_closed_today() -> None:
    state = state_of(order(order_id="a", status="new"), order(order_id="b", status="filled"),
                     order(order_id="a", status="accepted"), order(order_id="c", status="canceled"))
    orders = state.snapshot(["orders"])["orders"]
    assert {o["orderId"]: o["status"] for o in orders} == {"a": "accepted", "b": "filled", "c": "canceled"}
    assert len(orders) == 3


def test_a_new_trading_day_prunes_yesterdays_closed_orders_and_trades() -> None:
    state = state_of(order(order_id="open", status="new"), order(order_id="done", status="filled"),
                     trade(trade_id="t1"), position(), account())
    state.apply(account(at=NEXT_DAY))
    snap = state.snapshot(ALL)
    assert [o["orderId"] for o in snap["orders"]] == ["open"]   # open orders stay whatever their age
    assert snap["trades"] == []
    assert [p["symbol"] for p in snap["positions"]] == ["AAPL"]  # positions are not daily
    assert snap["account"]["timestamp"] == "2026-01-06T15:00:00.000Z"


def test_trading_day_is_new_york_not_utc() -> None:
    evening = datetime(2026, 1, 6, 3, 0, tzinfo=timezone.utc)       # 22:00 Jan 5 in New York
    after_midnight = datetime(2026, 1, 6, 5, 30, tzinfo=timezone.utc)  # 00:30 Jan 6 in New York
    assert trading_day(evening) == trading_day(T0)
    state = state_of(trade(trade_id="t1"), trade(trade_id="t2", at=evening))
    assert [t["tradeId"] for t in state.snapshot(["trades"])["trades"]] == ["t1", "t2"]
    state.apply(trade(trade_id="t3", at=after_midnight))
    assert [t["tradeId"] for t in state.snapshot(["trades"])["trades"]] == ["t3"]


def test_a_late_trade_of_an_earlier_day_is_not_today() -> None:
    state = state_of(trade(trade_id="today", at=NEXT_DAY), trade(trade_id="yesterday", at=T0))
    assert [t["tradeId"] for t in state.snapshot(["trades"])["trades"]] == ["today"]


def test_trades_are_todays_newest_last_at_most_100() -> None:
    state = state_of(*(trade(trade_id=f"t{i:03d}", at=later(i)) for i in range(150)))
    trades = state.snapshot(["trades"])["trades"]
    assert len(trades) == 100
    assert trades[0]["tradeId"] == "t050" and trades[-1]["tradeId"] == "t149"


def test_orders_are_listed_oldest_submitted_first() -> None:
    state = state_of(order(order_id="late", at=later(60)), order(order_id="early", at=T0))
    assert [o["orderId"] for o in state.snapshot(["orders"])["orders"]] == ["early", "late"]


def test_an_order_closed_on_an_earlier_day_is_not_in_todays_snapshot() -> None:
    # A late update (a resync, a replay) saying an order was closed yesterday: it is neither open
    # nor closed today, so a snapshot must not show it.
    state = state_of(account(at=NEXT_DAY), order(order_id="old", status="new", at=T0))
    assert [o["orderId"] for o in state.snapshot(["orders"])["orders"]] == ["old"]
    state.apply(order(order_id="old", status="canceled", at=T0))
    state.apply(order(order_id="older", status="filled", at=T0))
    assert state.snapshot(["orders"])["orders"] == []


def test_repeats_are_a_held_trade_and_an_order_update_the_order_went_past() -> None:
    state = state_of(trade(trade_id="t1"), order(order_id="o1", status="accepted", at=later(5)))
    assert state.repeats(trade(trade_id="t1")) and not state.repeats(trade(trade_id="t2"))
    assert state.repeats(order(order_id="o1", status="new", at=later(1)))        # older: went past it
    assert state.repeats(order(order_id="o1", status="accepted", at=later(5)))   # the same update again
    assert not state.repeats(order(order_id="o1", status="filled", filled="50", at=later(9)))
    assert not state.repeats(order(order_id="o2", status="new", at=later(1)))    # an order not held
    assert not state.repeats(position()) and not state.repeats(account())        # absolute: never
