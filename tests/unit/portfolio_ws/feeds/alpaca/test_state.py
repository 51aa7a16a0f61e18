"""One account's state: raw Alpaca dicts and ``now`` in, events out. No loop, no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from portfolio_ws.core.events import AccountUpdate, OrderUpdate, PositionUpdate, TradeExecuted
from portfolio_ws.feeds.alpaca.mapping import MalformedAlpaca
from portfolio_ws.feeds.alpaca.state import AccountState
from tests.alpaca_events import NOW, ACCOUNT, D, order, fill


def position(symbol: str, qty: str, entry: str, price: str, side: str = "long", asset_class: str = "us_equity"):
    return {"symbol": symbol, "qty": qty, "side": side, "avg_entry_price": entry, "current_price": price,
            "asset_class": asset_class}


def synced(*positions: dict[str, Any]) -> AccountState:
    state = AccountState("alice")
    state.apply_rest(ACCOUNT, list(positions), NOW, keep_stream_prices=False)
    return state


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_the_first_sync_emits_every_position_and_the_account():
    state = AccountState("alice")
    events = state.apply_rest(ACCOUNT, [position("AAPL", "10", "150", "155"),
                                        position("TSLA", "5", "250", "240", side="short")], NOW,
                              keep_stream_prices=False)
    assert kinds(events) == ["PositionUpdate", "PositionUpdate", "AccountUpdate"]
    aapl, tsla, account = events
    assert (aapl.quantity, aapl.unrealized_pnl, aapl.market_value) == (D(10), D(50), D(1550))
    assert (tsla.quantity, tsla.side, tsla.unrealized_pnl, tsla.market_value) == (D(5), "short", D(50), D(1200))
    assert account.equity == D(10000) + 1550 - 1200 and account.day_pnl == account.equity - 11000
    assert all(e.user_id == "alice" for e in events)


def test_a_repeated_sync_is_silent_and_changes_only_what_moved():
    state = synced(position("AAPL", "10", "150", "155"), position("MSFT", "1", "300", "310"))
    assert state.apply_rest(ACCOUNT, [position("AAPL", "10", "150", "155"), position("MSFT", "1", "300", "310")],
                            NOW, keep_stream_prices=False) == []
    events = state.apply_rest({**ACCOUNT, "cash": "9000"}, [position("AAPL", "12", "151", "155")], NOW,
                              keep_stream_prices=False)
    assert kinds(events) == ["PositionUpdate", "PositionUpdate", "AccountUpdate"]
    assert (events[0].symbol, events[0].quantity) == ("AAPL", D(12))
    assert (events[1].symbol, events[1].quantity, events[1].market_value) == ("MSFT", D(0), D(0))  # closed
    assert events[2].cash == D(9000)


def test_stream_prices_beat_rest_prices_while_the_data_stream_is_live():
    state = synced(position("AAPL", "10", "150", "155"))
    [tick] = state.apply_price("AAPL", D("160.5"))
    assert tick.current_price == D("160.5")
    assert state.account_update(NOW) is not None  # equity followed the tick
    assert state.apply_rest(ACCOUNT, [position("AAPL", "10", "150", "155")], NOW, keep_stream_prices=True) == []
    [back] = state.apply_rest(ACCOUNT, [position("AAPL", "10", "150", "155")], NOW, keep_stream_prices=False)[:1]
    assert back.current_price == D(155)


def test_a_malformed_position_leaves_that_symbol_alone():
    state = synced(position("AAPL", "10", "150", "155"), position("MSFT", "1", "300", "310"))
    events = state.apply_rest(ACCOUNT, [position("AAPL", "10", "150", "156"), {**position("MSFT", "x", "1", "1")}],
                              NOW, keep_stream_prices=False)
    assert [(e.symbol, e.quantity) for e in events if isinstance(e, PositionUpdate)] == [("AAPL", D(10))]
    assert state.holds("MSFT")
    with pytest.raises(MalformedAlpaca):
        state.apply_rest({"cash": "1"}, [], NOW, keep_stream_prices=False)
    with pytest.raises(MalformedAlpaca):
        state.apply_rest(ACCOUNT, {"not": "a list"}, NOW, keep_stream_prices=False)
    assert state.holds("MSFT") and state.holds("AAPL")


def test_buying_more_averages_the_entry_price():
    state = synced(position("AAPL", "10", "150", "155"))
    applied = state.apply_trade_update(fill("o1", "buy", "10", "170", "20", "10", "10"), NOW)
    assert applied.filled and applied.resync
    assert kinds(applied.events) == ["OrderUpdate", "TradeExecuted", "PositionUpdate"]
    trade, pos = applied.events[1], applied.events[2]
    assert trade.pnl is None and trade.trade_id == "x-o1-10" and trade.order_id == "o1"
    assert (pos.quantity, pos.entry_price, pos.current_price) == (D(20), D(160), D(170))
    account = state.account_update(NOW)
    assert account is not None and account.cash == D(10000) - 1700 and account.equity == account.cash + 20 * 170


def test_selling_part_realizes_pnl_against_the_average_entry():
    state = synced(position("AAPL", "10", "150", "155"))
    applied = state.apply_trade_update(fill("o1", "sell", "4", "165", "6", "4", "4"), NOW)
    trade, pos = applied.events[1], applied.events[2]
    assert trade.pnl == D(60) and (pos.quantity, pos.entry_price) == (D(6), D(150))


def test_covering_a_short_and_flipping_long():
    state = synced(position("TSLA", "5", "250", "240", side="short"))
    applied = state.apply_trade_update(fill("o1", "buy", "8", "230", "3", "8", "8", symbol="TSLA"), NOW)
    trade, pos = applied.events[1], applied.events[2]
    assert trade.pnl == D(100)  # 5 covered at 230 from 250
    assert (pos.quantity, pos.side, pos.entry_price, pos.opened_at) == (D(3), "long", D(230), trade.executed_at)


def test_closing_a_position_sends_quantity_zero_once():
    state = synced(position("AAPL", "10", "150", "155"))
    applied = state.apply_trade_update(fill("o1", "sell", "10", "160", "0", "10", "10"), NOW)
    trade, closed = applied.events[1], applied.events[2]
    assert trade.pnl == D(100) and closed.quantity == 0 and closed.market_value == 0 and closed.unrealized_pnl == 0
    assert not state.holds("AAPL") and state.streamed_symbols() == frozenset()
    assert state.apply_rest(ACCOUNT, [], NOW, keep_stream_prices=False)[:-1] == []


def test_a_repeated_execution_is_dropped_whole():
    state = synced(position("AAPL", "10", "150", "155"))
    data = fill("o1", "buy", "5", "160", "15", "5", "5")
    assert len(state.apply_trade_update(data, NOW).events) == 3
    cash = state.account_update(NOW)
    repeat = state.apply_trade_update(data, NOW)
    assert repeat.events == [] and not repeat.filled
    assert state.account_update(NOW) is None and cash is not None  # cash moved once
    assert state.position_qty("AAPL") == D(15)


def test_a_fill_rest_already_showed_does_not_move_cash_twice():
    state = synced(position("AAPL", "10", "150", "155"))
    # REST answered after the fill but before its stream event: 15 shares, cash already spent.
    state.apply_rest({**ACCOUNT, "cash": "9200"}, [position("AAPL", "15", "153.33", "160")], NOW,
                     keep_stream_prices=False)
    applied = state.apply_trade_update(fill("o1", "buy", "5", "160", "15", "5", "5"), NOW)
    assert kinds(applied.events) == ["OrderUpdate", "TradeExecuted"]
    account = state.account_update(NOW)
    assert account is None or account.cash == D(9200)


def test_a_fill_without_qty_uses_the_growth_of_filled_qty():
    state = synced()
    state.apply_trade_update({"event": "new", "timestamp": "2026-01-05T15:00:00Z", "order": order("o1", qty="10")}, NOW)
    first = fill("o1", "buy", "4", "100", None, "4", "10")
    del first["qty"]
    second = fill("o1", "buy", "6", "101", None, "10", "10")
    second["qty"] = None
    t1 = state.apply_trade_update(first, NOW).events
    t2 = state.apply_trade_update(second, NOW).events
    assert [e.quantity for e in t1 + t2 if isinstance(e, TradeExecuted)] == [D(4), D(6)]
    assert state.position_qty("AAPL") == D(10)


def test_order_updates_never_go_back_in_time():
    state = synced()
    newer = order("o1", status="canceled", updated="2026-01-05T15:00:09Z")
    older = order("o1", status="new", updated="2026-01-05T15:00:01Z")
    assert kinds(state.apply_orders([newer])) == ["OrderUpdate"]
    assert state.apply_trade_update({"event": "new", "timestamp": "2026-01-05T15:00:01Z", "order": older}, NOW).events == []
    assert state.apply_orders([older, newer]) == []


def test_price_ticks_for_symbols_not_held_do_nothing():
    state = synced(position("AAPL", "10", "150", "155"))
    assert state.apply_price("MSFT", D(1)) == []
    assert state.apply_price("AAPL", D(155)) == []  # same price: no change, no event
    [update] = state.apply_price("AAPL", D(156))
    assert isinstance(update, PositionUpdate) and update.unrealized_pnl == D(60)
    account = state.account_update(NOW)
    assert isinstance(account, AccountUpdate) and account.equity == D(10000) + 1560
    assert state.account_update(NOW) is None


def test_options_count_one_hundred_shares_a_contract():
    state = synced(position("AAPL260116C00200000", "2", "3.5", "4", asset_class="us_option"))
    assert state.streamed_symbols() == frozenset()  # the stock data stream does not price options
    account = state.account_update(NOW.replace(minute=1))
    assert account is None  # unchanged since the sync, which counted 2 * 4 * 100
    assert state.apply_rest(ACCOUNT, [position("AAPL260116C00200000", "2", "3.5", "4.5", asset_class="us_option")],
                            NOW, keep_stream_prices=False)[0].market_value == D(900)


def test_malformed_trade_updates_change_nothing():
    state = synced(position("AAPL", "10", "150", "155"))
    for bad in ("text", {"event": "fill"}, {**fill("o1", "buy", "1", "abc", "11", "1", "1")},
                {**fill("o1", "buy", "1", "160", "11", "1", "1"), "timestamp": "soon"}):
        with pytest.raises(MalformedAlpaca):
            state.apply_trade_update(bad, NOW)
    assert state.position_qty("AAPL") == D(10) and state.version == 0


def test_unknown_events_are_ignored():
    state = synced()
    applied = state.apply_trade_update(
        {"event": "brand_new", "timestamp": "2026-01-05T15:00:00Z", "order": order(status="brand_new")}, NOW)
    assert applied.events == [] and not applied.resync
    assert isinstance(state.apply_trade_update(
        {"event": "pending_cancel", "timestamp": "2026-01-05T15:00:00Z",
         "order": order(status="pending_cancel", filled="2")}, NOW).events[0], OrderUpdate)
