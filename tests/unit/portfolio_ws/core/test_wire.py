"""Wire formatting: what every client parses. Money 2 decimals (4 below $1), half-up, never "-0.00";
quantities without trailing zeros or exponent; timestamps ISO 8601 UTC with milliseconds and Z."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
import ujson
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_ws.core import wire
from tests.builders import T0, account, order, position, trade
from tests.wiretime import ISO_MS


@pytest.mark.parametrize("value, text", [
    ("175.5", "175.50"),
    ("175.50", "175.50"),
    ("17550", "17550.00"),
    ("1E+3", "1000.00"),           # no exponent on the wire
    ("1", "1.00"),
    ("1.00", "1.00"),
    ("2.345", "2.35"),             # half-up, not banker's rounding
    ("2.325", "2.33"),
    ("-2.345", "-2.35"),           # half away from zero on losses too
    ("0.5", "0.5000"),             # 4 decimals below $1.00
    ("0.12345", "0.1235"),
    ("0.00015", "0.0002"),
    ("-0.25", "-0.2500"),
    ("0.99994", "0.9999"),
    ("0", "0.00"),
    ("-0", "0.00"),                # never "-0.00"
    ("0.000", "0.00"),
    ("-0.001", "-0.0010"),
    ("-0.004", "-0.0040"),
    ("-1234.56", "-1234.56"),
    ("12345678.905", "12345678.91"),
])
def test_money(value: str, text: str) -> None:
    assert wire.money(Decimal(value)) == text


@pytest.mark.parametrize("value, text", [
    ("0.99995", "1.00"),     # rounds up to a dollar: shown as dollars and cents, not "1.0000"
    ("-0.99995", "-1.00"),
    ("0.00004", "0.00"),     # rounds to zero: plain zero, not "0.0000"
    ("-0.00004", "0.00"),    # and never "-0.0000"
])
def test_money_at_the_one_dollar_and_zero_boundaries(value: str, text: str) -> None:
    assert wire.money(Decimal(value)) == text


@settings(derandomize=True, max_examples=300)
@given(st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), allow_nan=False,
                   allow_infinity=False, places=6))
def test_money_shape_and_precision(value: Decimal) -> None:
    text = wire.money(value)
    assert "E" not in text and "e" not in text
    assert not re.fullmatch(r"-0\.0+", text)
    shown = Decimal(text)
    if abs(shown) >= 1 or shown == 0:
        assert re.fullmatch(r"-?\d+\.\d{2}", text), text
        assert abs(shown - value) <= Decimal("0.005")
    else:
        assert re.fullmatch(r"-?0\.\d{4}", text), text
        assert abs(shown - value) <= Decimal("0.00005")


@pytest.mark.parametrize("value, text", [
    ("3.0769", "3.08"),
    ("1.2", "1.20"),
    ("0.5", "0.50"),          # percentages are always 2 decimals, even below 1
    ("0.125", "0.13"),        # half-up
    ("-0.125", "-0.13"),
    ("-0.001", "0.00"),       # never "-0.00"
    ("-0", "0.00"),
    ("1E+2", "100.00"),
])
def test_percent(value: str, text: str) -> None:
    assert wire.percent(Decimal(value)) == text


@pytest.mark.parametrize("value, text", [
    ("100", "100"),
    ("100.000", "100"),
    ("1E+2", "100"),
    ("0.50", "0.5"),
    ("0.5", "0.5"),
    ("12.340", "12.34"),
    ("0", "0"),
    ("0.000", "0"),
    ("-0", "0"),
    ("0.00000001", "0.00000001"),
    ("2.5E-7", "0.00000025"),
    ("1000000", "1000000"),
])
def test_quantity(value: str, text: str) -> None:
    assert wire.quantity(Decimal(value)) == text


@settings(derandomize=True, max_examples=300)
@given(st.decimals(min_value=Decimal("0"), max_value=Decimal("100000000"), allow_nan=False,
                   allow_infinity=False, places=8))
def test_quantity_shape(value: Decimal) -> None:
    text = wire.quantity(value)
    assert "E" not in text and "e" not in text and not text.startswith("-")
    assert Decimal(text) == value
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")


def test_timestamp_is_iso_utc_milliseconds_z() -> None:
    moment = datetime(2026, 1, 4, 15, 30, 45, 123456, tzinfo=timezone.utc)
    assert wire.timestamp(moment) == "2026-01-04T15:30:45.123Z"


def test_timestamp_converts_other_zones_to_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert wire.timestamp(datetime(2026, 1, 4, 10, 30, 45, tzinfo=new_york)) == "2026-01-04T15:30:45.000Z"


def test_epoch_timestamp() -> None:
    assert wire.epoch_timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert wire.epoch_timestamp(T0.timestamp() + 0.25) == "2026-01-05T15:00:00.250Z"
    assert ISO_MS.match(wire.epoch_timestamp(1767540645.123))


def test_position_payload_matches_the_api_document() -> None:
    assert wire.payload(position("u1")) == {
        "symbol": "AAPL", "quantity": "100", "currentPrice": "175.50", "entryPrice": "170.25",
        "unrealizedPnl": "525.00", "unrealizedPnlPercent": "3.08", "marketValue": "17550.00",
        "side": "long", "strategyId": "strategy-1", "openedAt": "2026-01-05T15:00:00.000Z",
    }


def test_closed_position_has_quantity_zero() -> None:
    assert wire.payload(position("u1", qty="0"))["quantity"] == "0"


def test_order_payload_matches_the_api_document() -> None:
    data = wire.payload(order("u1", status="filled", filled="50"))
    assert data == {
        "orderId": "order-1", "brokerOrderId": "broker-order-1", "symbol": "TSLA", "side": "buy",
        "type": "limit", "status": "filled", "qty": "50", "filledQty": "50", "filledAvgPrice": None,
        "limitPrice": "246.00", "stopPrice": None, "submittedAt": "2026-01-05T15:00:00.000Z",
        "filledAt": "2026-01-05T15:00:00.000Z",
    }


def test_account_payload_matches_the_api_document() -> None:
    assert wire.payload(account("u1")) == {
        "equity": "104308.75", "buyingPower": "208617.50", "cash": "50000.00",
        "portfolioValue": "104308.75", "dayPnl": "1234.56", "dayPnlPercent": "1.20",
        "timestamp": "2026-01-05T15:00:00.000Z",
    }


def test_trade_payload_matches_the_api_document() -> None:
    assert wire.payload(trade("u1")) == {
        "tradeId": "trade-1", "symbol": "NVDA", "side": "sell", "quantity": "25", "price": "520.50",
        "pnl": "1250.00", "executedAt": "2026-01-05T15:00:00.000Z", "strategyId": "strategy-1",
    }


def test_data_message_envelope_carries_seq() -> None:
    msg = ujson.loads(wire.message("position_update", "u1", {"symbol": "AAPL"}, T0.timestamp(), 7))
    assert msg == {"type": "position_update", "timestamp": "2026-01-05T15:00:00.000Z", "userId": "u1",
                   "seq": 7, "data": {"symbol": "AAPL"}}


def test_control_message_has_no_seq_and_code_message_details() -> None:
    msg = ujson.loads(wire.control("error", "u1", T0.timestamp(), "INVALID_JSON", "Message is not valid JSON"))
    assert "seq" not in msg
    assert msg["data"] == {"code": "INVALID_JSON", "message": "Message is not valid JSON", "details": {}}
    assert set(msg) == {"type", "timestamp", "userId", "data"}


def test_pong_data_is_empty() -> None:
    msg = ujson.loads(wire.control("pong", "u1", T0.timestamp()))
    assert msg["type"] == "pong" and msg["data"] == {} and "seq" not in msg


def test_text_is_utf8_and_slashes_unescaped() -> None:
    frame = wire.message("info", "ü/1", {"x": "a/b é"}, 0.0)
    assert "ü/1" in frame and "a/b é" in frame
    assert ujson.loads(frame)["userId"] == "ü/1"


# ---- the fast paths agree with the plain rule on any value -----------------------------------
def _reference_money(value: Decimal) -> str:
    """The rule as PROTOCOL.md states it, written the slow, obvious way."""
    result = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    fine = value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    if abs(value) < 1 and fine and abs(fine) < 1:
        result = fine
    return f"{abs(result) if not result else result:f}"


@pytest.mark.slow
@settings(max_examples=3000, derandomize=True, database=None)
@given(st.decimals(min_value=-10**12, max_value=10**12, allow_nan=False, allow_infinity=False, places=6)
       | st.decimals(min_value=-2, max_value=2, allow_nan=False, allow_infinity=False))
def test_money_and_percent_match_the_plain_rule_for_any_value(value: Decimal) -> None:
    assert wire.money(value) == _reference_money(value)
    plain = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert wire.percent(value) == f"{abs(plain) if not plain else plain:f}"
    assert "E" not in wire.money(value) and "E" not in wire.percent(value)
