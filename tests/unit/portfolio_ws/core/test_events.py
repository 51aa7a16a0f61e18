"""The event model: frozen values, validated at construction so a bad feed value fails at the feed."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

import pytest

from portfolio_ws.core.events import AccountUpdate, OrderUpdate, PositionUpdate, TradeExecuted
from portfolio_ws.errors import InvalidEvent
from tests.builders import T0, account, later, order, position, trade


def test_each_event_names_its_type_channel_and_key() -> None:
    assert (PositionUpdate.TYPE, PositionUpdate.CHANNEL, position(symbol="MSFT").key) == \
        ("position_update", "positions", "MSFT")
    assert (OrderUpdate.TYPE, OrderUpdate.CHANNEL, order(order_id="o-9").key) == ("order_update", "orders", "o-9")
    assert (AccountUpdate.TYPE, AccountUpdate.CHANNEL, account().key) == ("account_update", "account", "account")
    assert (TradeExecuted.TYPE, TradeExecuted.CHANNEL, trade(trade_id="t-3").key) == \
        ("trade_executed", "trades", "t-3")


def test_events_are_frozen() -> None:
    event = position()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.symbol = "MSFT"  # type: ignore[misc]


def test_closed_position_is_quantity_zero() -> None:
    assert position(qty="0").quantity == 0


def test_short_position_has_unsigned_quantity() -> None:
    assert position(side="short").quantity == Decimal("100")
    with pytest.raises(InvalidEvent, match="unsigned"):
        dataclasses.replace(position(), quantity=Decimal("-1"))


@pytest.mark.parametrize("field, value", [
    ("current_price", 175.5),                 # float money is refused
    ("current_price", Decimal("NaN")),
    ("market_value", Decimal("Infinity")),
    ("opened_at", datetime(2026, 1, 5, 15, 0)),  # naive datetime
    ("user_id", ""),
    ("symbol", None),                         # required
    ("side", "flat"),
])
def test_bad_position_values_fail_loudly(field: str, value: object) -> None:
    with pytest.raises(InvalidEvent):
        dataclasses.replace(position(), **{field: value})


@pytest.mark.parametrize("field, value", [
    ("status", "done"),
    ("side", "hold"),
    ("qty", 50),
    ("submitted_at", None),
    ("filled_avg_price", Decimal("sNaN")),
])
def test_bad_order_values_fail_loudly(field: str, value: object) -> None:
    with pytest.raises(InvalidEvent):
        dataclasses.replace(order(), **{field: value})


def test_bad_account_and_trade_values_fail_loudly() -> None:
    with pytest.raises(InvalidEvent):
        dataclasses.replace(account(), equity=1.0)
    with pytest.raises(InvalidEvent):
        dataclasses.replace(trade(), side="short")
    with pytest.raises(InvalidEvent):
        dataclasses.replace(trade(), executed_at=datetime(2026, 1, 5))


def test_optional_fields_may_be_none() -> None:
    event = dataclasses.replace(trade(), pnl=None, strategy_id=None, order_id=None)
    assert event.pnl is None
    assert dataclasses.replace(position(), strategy_id=None, opened_at=None).opened_at is None


@pytest.mark.parametrize("status, is_open", [
    ("pending_new", True), ("new", True), ("accepted", True), ("partially_filled", True),
    ("filled", False), ("canceled", False), ("rejected", False), ("expired", False),
])
def test_order_open_statuses(status: str, is_open: bool) -> None:
    assert order(status=status).is_open is is_open


def test_order_last_time_prefers_updated_then_filled_then_submitted() -> None:
    base = order(status="new")
    assert base.last_time == T0
    filled = dataclasses.replace(base, status="filled", filled_at=later(60))
    assert filled.last_time == later(60)
    assert dataclasses.replace(filled, updated_at=later(120)).last_time == later(120)


@pytest.mark.parametrize("event,changes", [
    (position(), {"market_value": Decimal("-17550.00")}),   # unsigned from every feed (protocol.md section 4)
    (position(side="short"), {"market_value": Decimal("-1")}),
    (order(), {"qty": Decimal("-50")}),
    (order(), {"filled_qty": Decimal("-1")}),
    (trade(), {"quantity": Decimal("0")}),
    (trade(), {"quantity": Decimal("-25")}),
])
def test_what_the_wire_promises_unsigned_is_refused_signed_from_any_feed(event: object, changes: dict) -> None:
    with pytest.raises(InvalidEvent, match="unsigned|more than zero"):
        dataclasses.replace(event, **changes)  # type: ignore[type-var]


def test_a_notional_order_not_yet_filled_has_quantity_zero() -> None:
    assert order(qty="0").qty == 0
