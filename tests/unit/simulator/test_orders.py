"""Orders: the transition table is the lifecycle of the API document; fills and triggers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_ws import constants as c
from portfolio_ws.errors import UsageError
from simulator.orders import TRANSITIONS, IllegalTransition, Order


def order(type_: str = "limit", side: str = "buy", qty: int = 100, **prices: Decimal) -> Order:
    if type_ == "limit" and not prices:
        prices = {"limit_price": Decimal("10.00")}
    if type_ == "stop" and not prices:
        prices = {"stop_price": Decimal("10.00")}
    return Order("o1", "b1", 0, "AAPL", 0, side, type_, Decimal(qty), 0.0, **prices)


def test_table_covers_exactly_the_api_statuses() -> None:
    assert set(TRANSITIONS) - {None} == set(c.ORDER_STATUSES)
    for status in c.CLOSED_ORDER_STATUSES:
        assert TRANSITIONS[status] == frozenset()
    # Every status is reachable from "not submitted".
    seen, frontier = set(), {None}
    while frontier:
        frontier = {n for s in frontier for n in TRANSITIONS[s]} - seen
        seen |= frontier
    assert seen == set(c.ORDER_STATUSES)


def test_happy_path_and_illegal_moves() -> None:
    o = order()
    with pytest.raises(IllegalTransition):
        o.move_to("accepted", 1.0)  # not submitted yet
    for status in ("pending_new", "new", "accepted"):
        o.move_to(status, 1.0)
    o.record_fill(Decimal(30), Decimal("9.99"), 2.0)
    assert o.status == "partially_filled" and o.remaining == 70
    o.record_fill(Decimal(70), Decimal("10.00"), 3.0)
    assert o.status == "filled" and o.filled_at == 3.0
    assert o.event("u").filled_avg_price == Decimal("9.9970")
    with pytest.raises(IllegalTransition):
        o.move_to("canceled", 4.0)  # filled is final


def test_fills_only_while_working_and_within_quantity() -> None:
    o = order()
    o.move_to("pending_new", 0.0)
    with pytest.raises(UsageError):
        o.record_fill(Decimal(1), Decimal(10), 1.0)  # not accepted yet
    o.move_to("new", 0.0)
    o.move_to("accepted", 0.0)
    with pytest.raises(UsageError):
        o.record_fill(Decimal(101), Decimal(10), 1.0)


def test_limits_cross_and_stops_trigger_on_the_right_side() -> None:
    buy = order("limit", "buy", limit_price=Decimal("10.00"))
    assert buy.crosses(Decimal("10.00")) and buy.crosses(Decimal("9.99")) and not buy.crosses(Decimal("10.01"))
    sell = order("limit", "sell", limit_price=Decimal("10.00"))
    assert sell.crosses(Decimal("10.01")) and not sell.crosses(Decimal("9.99"))
    stop_buy = order("stop", "buy", stop_price=Decimal("10.00"))
    assert not stop_buy.triggered and stop_buy.triggers(Decimal("10.00")) and not stop_buy.triggers(Decimal("9.99"))
    stop_sell = order("stop", "sell", stop_price=Decimal("10.00"))
    assert stop_sell.triggers(Decimal("9.99")) and not stop_sell.triggers(Decimal("10.01"))
    assert order("market").triggered


@pytest.mark.parametrize("kwargs", [
    {"type_": "limit", "limit_price": None}, {"type_": "market", "limit_price": Decimal(1)},
    {"type_": "stop_limit"}, {"qty": 0}, {"side": "short"},
])
def test_bad_orders_are_refused(kwargs: dict) -> None:
    args = {"type_": "market", "side": "buy", "qty": 10, **kwargs}
    with pytest.raises(UsageError):
        Order("o", "b", 0, "AAPL", 0, args.pop("side"), args.pop("type_"), Decimal(args.pop("qty")), 0.0, **args)
