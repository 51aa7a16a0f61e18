"""The coalescing batch window: positions latest per symbol, orders latest per orderId, account latest,
trades all in order; one item goes out as its own type, more as a batch with only non-empty keys."""

from __future__ import annotations

import gc

from portfolio_ws.core.window import FRAGMENT, Window, payload, stamp
from tests.builders import NOW, account, order, position, trade

ALL = frozenset({"positions", "orders", "account", "trades"})


def window_of(*events: object, start: int = 1, at: float = NOW) -> Window:
    window = Window()
    for i, event in enumerate(events):
        window.add(stamp(start + i, at + i, event))  # type: ignore[arg-type]
    return window


def test_empty_window_renders_nothing() -> None:
    window = Window()
    assert not window
    assert window.render(ALL) is None


def test_one_event_is_sent_as_its_own_type() -> None:
    rendered = window_of(position(symbol="AAPL")).render(ALL)
    assert rendered is not None
    assert rendered.type == "position_update"
    assert rendered.data["symbol"] == "AAPL"
    assert rendered.seq == 1


def test_positions_coalesce_to_the_latest_per_symbol() -> None:
    window = window_of(position(symbol="AAPL", price="170.00"), position(symbol="MSFT"),
                       position(symbol="AAPL", price="171.00"), position(symbol="AAPL", price="172.00"))
    rendered = window.render(ALL)
    assert rendered is not None and rendered.type == "batch"
    assert list(rendered.data) == ["positions"]
    latest = {p["symbol"]: p["currentPrice"] for p in rendered.data["positions"]}
    assert latest == {"AAPL": "172.00", "MSFT": "175.50"}
    assert rendered.seq == 4


def test_many_updates_of_one_symbol_collapse_to_one_position_update() -> None:
    rendered = window_of(*(position(price=f"17{i}.00") for i in range(5))).render(ALL)
    assert rendered is not None
    assert rendered.type == "position_update"
    assert rendered.data["currentPrice"] == "174.00"
    assert rendered.seq == 5
    assert rendered.raw_events == 5


def test_orders_coalesce_to_the_latest_per_order_id() -> None:
    window = window_of(order(order_id="a", status="new"), order(order_id="b", status="new"),
                       order(order_id="a", status="accepted"), order(order_id="a", status="filled"))
    rendered = window.render(ALL)
    assert rendered is not None
    statuses = {o["orderId"]: o["status"] for o in rendered.data["orders"]}
    assert statuses == {"a": "filled", "b": "new"}


def test_account_coalesces_to_the_latest_and_is_an_object() -> None:
    window = window_of(account(equity="100.00"), account(equity="200.00"), position())
    rendered = window.render(ALL)
    assert rendered is not None and rendered.type == "batch"
    assert rendered.data["account"]["equity"] == "200.00"
    assert isinstance(rendered.data["account"], dict)


def test_trades_are_all_kept_in_order() -> None:
    ids = [f"t{i}" for i in range(20)]
    window = window_of(*(trade(trade_id=i, symbol="NVDA") for i in ids))
    rendered = window.render(ALL)
    assert rendered is not None and rendered.type == "batch"
    assert [t["tradeId"] for t in rendered.data["trades"]] == ids


def test_same_trade_id_twice_is_still_two_trades() -> None:
    rendered = window_of(trade(trade_id="t1"), trade(trade_id="t1")).render(ALL)
    assert rendered is not None and len(rendered.data["trades"]) == 2


def test_batch_holds_only_non_empty_keys_in_channel_order() -> None:
    window = window_of(trade(), position(), account())
    rendered = window.render(ALL)
    assert rendered is not None and rendered.type == "batch"
    assert list(rendered.data) == ["positions", "account", "trades"]


def test_a_connection_gets_only_its_channels() -> None:
    window = window_of(position(), order(), account(), trade())
    orders_only = window.render(frozenset({"orders"}))
    assert orders_only is not None and orders_only.type == "order_update"
    assert orders_only.seq == 2  # the newest event it reflects, not the window's newest
    two = window.render(frozenset({"positions", "trades"}))
    assert two is not None and two.type == "batch" and set(two.data) == {"positions", "trades"}
    assert two.seq == 4


def test_nothing_on_the_subscribed_channels_renders_nothing() -> None:
    window = window_of(position(), account())
    assert window.render(frozenset({"orders", "trades"})) is None
    assert window.render(frozenset()) is None
    assert window.has_any({"account"}) and not window.has_any({"orders", "trades"})


def test_events_the_connection_already_has_are_left_out() -> None:
    window = window_of(position(symbol="AAPL"), position(symbol="MSFT"), trade(trade_id="t1"))
    rendered = window.render(ALL, newer_than=2)
    assert rendered is not None and rendered.type == "trade_executed" and rendered.seq == 3
    assert window.render(ALL, newer_than=3) is None


def test_accounting_fields() -> None:
    window = window_of(position(), position(), trade(), at=100.0)  # received at 100, 101, 102
    rendered = window.render(ALL)
    assert rendered is not None
    assert rendered.raw_events == 3          # three messages without batching
    assert rendered.oldest_received_at == 101.0  # the oldest value the message carries
    assert rendered.newest_received_at == 102.0  # the trade, the newest event in it


def test_an_event_is_formatted_once_and_held_as_data_the_collector_skips() -> None:
    stamped = stamp(1, NOW, position(symbol="AAPL"))
    assert payload(stamped)["symbol"] == "AAPL" and isinstance(stamped[FRAGMENT], str)
    gc.collect()
    # Only strings and numbers: after one look the garbage collector no longer visits it, so
    # millions held in windows and recovery buffers don't lengthen its full passes.
    assert not gc.is_tracked(stamped)


def test_a_cleared_window_is_empty_and_takes_new_events() -> None:
    window = window_of(position(), order(), account(), trade())
    window.clear()
    assert not window and window.render(ALL) is None
    window.add(stamp(9, NOW, trade(trade_id="t9")))
    rendered = window.render(ALL)
    assert rendered is not None and rendered.type == "trade_executed" and rendered.raw_events == 1


def test_extend_returns_the_window() -> None:
    window = Window().extend([stamp(1, NOW, position()), stamp(2, NOW, trade())])
    assert window and window.render(ALL) is not None
