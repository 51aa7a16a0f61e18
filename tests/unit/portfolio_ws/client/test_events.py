"""Decoding real server frames (built by the server's own wire module) into typed events."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_ws import constants as c
from portfolio_ws.client.events import (AccountEvent, Connected, OrderEvent, Pong, PositionEvent, Resumed,
                                        ServerError, Snapshot, Subscribed, TradeEvent, Unsubscribed, decode)
from portfolio_ws.core import wire
from portfolio_ws.core.portfolio import PortfolioState
from tests.builders import T0, account, order, position, trade

NOW = T0.timestamp()
U = "user-1"


def frame(event, seq):
    return wire.message(event.TYPE, U, wire.payload(event), NOW, seq)


def test_each_event_type_is_decoded_with_decimals_times_and_its_seq():
    [p] = decode(frame(position(U, "SNDL", "1500", "0.4567", "0.5123"), 3))
    assert isinstance(p, PositionEvent) and p.seq == 3 and p.symbol == "SNDL"
    assert p.quantity == Decimal("1500") and p.current_price == Decimal("0.4567")
    assert isinstance(p.unrealized_pnl, Decimal) and p.opened_at == T0 and not p.closed
    [o] = decode(frame(order(U, "order-9", "partially_filled", filled="10", avg="245.10"), 4))
    assert isinstance(o, OrderEvent) and (o.seq, o.order_id, o.status) == (4, "order-9", "partially_filled")
    assert o.filled_qty == Decimal(10) and o.filled_avg_price == Decimal("245.10") and o.stop_price is None
    assert o.is_open and o.filled_at is None and o.submitted_at == T0
    [a] = decode(frame(account(U, "104308.75"), 5))
    assert isinstance(a, AccountEvent) and a.equity == Decimal("104308.75") and a.buying_power == Decimal("208617.50")
    assert a.day_pnl_percent == Decimal("1.20") and a.timestamp == T0
    [t] = decode(frame(trade(U, pnl=None), 6))
    assert isinstance(t, TradeEvent) and t.pnl is None and t.price == Decimal("520.50") and t.seq == 6


def test_a_closed_position_says_so():
    [p] = decode(frame(position(U, "TSLA", "0"), 7))
    assert p.closed and p.quantity == 0


def test_a_batch_is_unpacked_in_channel_order_every_item_carrying_the_batch_seq():
    data = {"positions": [wire.payload(position(U, "AAPL")), wire.payload(position(U, "MSFT"))],
            "orders": [wire.payload(order(U))], "account": wire.payload(account(U)),
            "trades": [wire.payload(trade(U, "t1")), wire.payload(trade(U, "t2"))]}
    events = decode(wire.message(c.BATCH, U, data, NOW, 13))
    assert [type(e).__name__ for e in events] == ["PositionEvent", "PositionEvent", "OrderEvent",
                                                    "AccountEvent", "TradeEvent", "TradeEvent"]
    assert {e.seq for e in events} == {13}
    assert [e.trade_id for e in events if isinstance(e, TradeEvent)] == ["t1", "t2"]


def test_a_snapshot_stays_one_event_naming_the_channels_it_holds():
    state = PortfolioState()
    for event in (position(U, "AAPL"), order(U), account(U), trade(U)):
        state.apply(event)
    [s] = decode(wire.message(c.SNAPSHOT, U, state.snapshot(["positions", "account"]), NOW, 4))
    assert isinstance(s, Snapshot) and s.seq == 4 and s.channels == {"positions", "account"}
    assert [p.symbol for p in s.positions] == ["AAPL"] and s.positions[0].seq == 4
    assert s.account is not None and s.orders == () and s.trades == ()
    [empty] = decode(wire.message(c.SNAPSHOT, U, PortfolioState().snapshot(c.CHANNELS), NOW, 0))
    assert empty.account is None and empty.channels == set(c.CHANNELS)


def test_control_messages():
    connected = wire.control(c.INFO, U, NOW, c.CONNECTED, "Connected", {
        "connectionId": "conn-1", "availableChannels": list(c.CHANNELS), "batchWindowMs": 1000,
        "limits": {"connectionsPerUser": 5}})
    assert decode(connected) == [Connected("conn-1", c.CHANNELS, 1000, {"connectionsPerUser": 5})]
    assert decode(wire.control(c.INFO, U, NOW, c.SUBSCRIBED, "", {"channels": ["orders"]})) == [
        Subscribed(("orders",))]
    assert decode(wire.control(c.INFO, U, NOW, c.UNSUBSCRIBED, "", {"channels": []})) == [Unsubscribed(())]
    assert decode(wire.control(c.INFO, U, NOW, c.RESUMED, "", {"recovered": False, "from": 8, "to": 12})) == [
        Resumed(False, 8, 12)]
    assert decode(wire.control(c.ERROR, U, NOW, c.INVALID_JSON, "bad", {})) == [
        ServerError(c.INVALID_JSON, "bad", {})]
    assert decode(wire.control(c.PONG, U, NOW)) == [Pong()]


def test_unknown_types_and_infos_are_ignored_and_garbage_is_a_value_error():
    assert decode('{"type": "future_thing", "data": {}}') == []
    assert decode(wire.control(c.INFO, U, NOW, "SOMETHING_NEW", "", {})) == []
    with pytest.raises(ValueError):
        decode("[1, 2]")
    with pytest.raises(ValueError):
        decode("not json")
