"""Alpaca wire values → portfolio-ws values: plain functions, no loop."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import msgpack
import pytest

from portfolio_ws import constants as c
from portfolio_ws.feeds.alpaca import mapping as m

D = Decimal
ORDER = {
    "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
    "client_order_id": "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
    "created_at": "2026-01-05T15:00:00.123456789Z",
    "updated_at": "2026-01-05T15:00:01.5Z",
    "submitted_at": "2026-01-05T15:00:00.2Z",
    "filled_at": None,
    "symbol": "AAPL",
    "qty": "50",
    "filled_qty": "0",
    "filled_avg_price": "0",
    "type": "limit",
    "side": "buy",
    "limit_price": "246.00",
    "stop_price": None,
    "status": "new",
}


@pytest.mark.parametrize("event,expected", [
    ("new", "new"), ("accepted", "accepted"), ("pending_new", "pending_new"),
    ("partial_fill", "partially_filled"), ("fill", "filled"), ("canceled", "canceled"),
    ("expired", "expired"), ("rejected", "rejected"), ("replaced", "canceled"),
])
def test_each_event_of_the_api_document_maps_on_its_own(event, expected):
    assert m.order_status(event, "whatever", D(0)) == expected


@pytest.mark.parametrize("status,filled,expected", [
    ("done_for_day", "0", "new"), ("done_for_day", "3", "partially_filled"),
    ("pending_cancel", "0", "new"), ("pending_replace", "2", "partially_filled"),
    ("stopped", "0", "new"), ("held", "0", "accepted"), ("accepted_for_bidding", "0", "accepted"),
    ("suspended", "0", "accepted"), ("calculated", "5", "filled"), ("pending_review", "0", "pending_new"),
    ("replaced", "0", "canceled"), ("partially_filled", "1", "partially_filled"),
])
def test_other_events_take_the_status_of_their_order(status, filled, expected):
    for event in ("order_cancel_rejected", "pending_cancel", "done_for_day", None):
        assert m.order_status(event, status, D(filled)) == expected


def test_every_mapped_status_is_one_of_the_api_documents():
    assert set(m.EVENT_STATUS.values()) <= set(c.ORDER_STATUSES)
    for status in m.ORDER_STATUS:
        assert m.order_status(None, status, D(0)) in c.ORDER_STATUSES
        assert m.order_status(None, status, D(1)) in c.ORDER_STATUSES


def test_unknown_events_and_statuses_map_to_nothing():
    assert m.order_status("brand_new_event", "brand_new_status", D(0)) is None
    assert m.order_update("u1", {**ORDER, "status": "odd"}, "brand_new_event") is None


def test_numbers_become_exact_decimals_from_their_text():
    assert m.decimal("246.10", "x") == D("246.10")
    assert m.decimal(126.55, "x") == D("126.55")  # a msgpack float, through str()
    assert m.decimal(7, "x") == D(7)
    for bad in ("abc", "NaN", "Infinity", "", None, True, [1], {"a": 1}):
        with pytest.raises(m.MalformedAlpaca):
            m.decimal(bad, "x")
    assert m.optional_decimal(None, "x") is None and m.optional_decimal("", "x") is None


def test_times_from_text_datetimes_and_msgpack_timestamps():
    moment = datetime(2026, 1, 5, 15, 0, 0, 123456, tzinfo=timezone.utc)
    assert m.timestamp("2026-01-05T15:00:00.123456789Z", "t") == moment
    assert m.timestamp("2026-01-05T10:00:00.123456-05:00", "t") == moment
    packed = msgpack.unpackb(msgpack.packb(moment, datetime=True))
    assert m.timestamp(packed, "t") == moment
    assert m.timestamp(datetime(2026, 1, 5, 15, 0, 0, 123456), "t") == moment  # naive = UTC
    with pytest.raises(m.MalformedAlpaca):
        m.timestamp("yesterday", "t")
    with pytest.raises(m.MalformedAlpaca):
        m.timestamp(12, "t")


def test_an_order_becomes_an_order_update():
    update = m.order_update("u1", ORDER, "new")
    assert update is not None
    assert (update.user_id, update.order_id, update.broker_order_id) == ("u1", ORDER["client_order_id"], ORDER["id"])
    assert (update.symbol, update.side, update.type, update.status) == ("AAPL", "buy", "limit", "new")
    assert (update.qty, update.filled_qty, update.filled_avg_price, update.limit_price) == (D(50), D(0), None, D("246.00"))
    assert update.submitted_at == datetime(2026, 1, 5, 15, 0, 0, 200000, tzinfo=timezone.utc)


def test_a_notional_order_without_qty_uses_the_filled_qty():
    update = m.order_update("u1", {**ORDER, "qty": None, "notional": "500", "filled_qty": "2.5"}, "partial_fill")
    assert update is not None and update.qty == D("2.5") and update.status == "partially_filled"


@pytest.mark.parametrize("change", [{"side": "short"}, {"id": None}, {"symbol": ""},
                                    {"submitted_at": None, "created_at": None}, {"qty": "many"}])
def test_a_malformed_order_is_refused(change):
    with pytest.raises(m.MalformedAlpaca):
        m.order_update("u1", {**ORDER, **change}, "new")


def test_rest_positions_are_signed_by_side():
    raw = {"symbol": "TSLA", "qty": "-5", "side": "short", "avg_entry_price": "250.5",
           "current_price": "240", "asset_class": "us_equity"}
    assert m.rest_position(raw) == m.RestPosition("TSLA", D(-5), D("250.5"), D(240), "us_equity")
    assert m.rest_position({**raw, "qty": "5"}).qty == D(-5)  # either sign convention
    assert m.rest_position({**raw, "side": "long", "qty": "5", "current_price": None}).current_price is None


def test_rest_account_defaults_last_equity_to_equity():
    account = m.rest_account({"cash": "1", "buying_power": "2", "equity": "3"})
    assert account == m.RestAccount(D(1), D(2), D(3), D(3))
    with pytest.raises(m.MalformedAlpaca):
        m.rest_account({"cash": "1", "buying_power": "2"})


def test_price_ticks_need_a_positive_price():
    tick = m.price_tick({"T": "t", "S": "AAPL", "p": 126.55, "t": None})
    assert tick == m.PriceTick("AAPL", D("126.55"), None)
    for bad in ({"S": "AAPL", "p": 0}, {"S": "AAPL", "p": -1}, {"S": "", "p": 1}, {"p": 1}, "frame"):
        with pytest.raises(m.MalformedAlpaca):
            m.price_tick(bad)


def test_clock():
    assert m.clock_is_open({"is_open": True}) is True
    with pytest.raises(m.MalformedAlpaca):
        m.clock_is_open({"is_open": "yes"})
