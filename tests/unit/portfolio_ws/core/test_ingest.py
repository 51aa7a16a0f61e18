"""core.ingest: every field of every event type, by kind, is read or refused with its name; and
core.seen keeps a bounded window of ids per user."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_ws.core import wire
from portfolio_ws.core.ingest import (_FIELDS, POSITIVE, RANGES, SIGNED, TYPES, UNSIGNED, Item, ItemError,
                                      parse_decimal, parse_item)
from portfolio_ws.core.seen import SeenIds
from tests import ROOT
from tests.builders import account, order, position, trade

GOOD = {"position": position("u"), "order": order("u"), "account": account("u"), "trade": trade("u")}
TIME = "2026-01-05T15:30:00.000Z"


def item(kind: str) -> dict:
    """An item carrying every field the builder's event has, by wire name, as strings."""
    event = GOOD[kind]
    data = {}
    for wire_name, (name, typ, _) in _FIELDS[type(event)].items():
        value = getattr(event, name)
        data[wire_name] = None if value is None else wire.timestamp(value) if typ.__name__ == "datetime" else str(value)
    return {"type": kind, "userId": "u", "id": "i-1", "data": data}


@pytest.mark.parametrize("kind", TYPES)
def test_every_type_round_trips_to_the_same_event(kind):
    parsed = parse_item(item(kind))
    assert isinstance(parsed, Item) and parsed.user_id == "u" and parsed.id == "i-1"
    assert wire.payload(parsed.event) == wire.payload(GOOD[kind])


CASES = [(kind, wire_name, typ, optional) for kind, cls in TYPES.items()
         for wire_name, (_, typ, optional) in _FIELDS[cls].items()]


@pytest.mark.parametrize("kind,field,typ,optional", CASES)
def test_every_field_is_refused_by_name_when_wrong(kind, field, typ, optional):
    bad_values = {Decimal: [1.5, "abc", "NaN", "Infinity", "1e999999999", "-1E+15", "1E-999998", "1" * 65, ""],
                  str: [5, "", "x" * 257]}.get(typ, ["2026-01-05T15:30:00", "yesterday", 1767627000,
                             # times the engine can't place on a New York trading day (its date overflows)
                             "0001-01-01T00:00:00Z", "9999-12-31T23:00:00-12:00", "1969-12-31T23:59:59Z"])
    for value in bad_values:
        it = item(kind)
        it["data"][field] = value
        result = parse_item(it)
        assert isinstance(result, ItemError) and result.field == f"data.{field}", (field, value, result)
    it = item(kind)
    it["data"].pop(field)
    result = parse_item(it)
    assert isinstance(result, Item) if optional else result == ItemError(f"data.{field}", "is required")


def test_the_envelope_and_unknown_fields_are_refused_by_name():
    for change, field in [({"type": "dividend"}, "type"), ({"userId": ""}, "userId"), ({"id": 7}, "id"),
                          ({"id": "x" * 129}, "id"), ({"data": []}, "data"), ({"extra": 1}, "extra")]:
        result = parse_item({**item("trade"), **change})
        assert isinstance(result, ItemError) and result.field == field, (change, result)
    it = item("trade")
    it["data"]["userId"] = "someone-else"  # the user comes from the item, never from data
    assert parse_item(it) == ItemError("data.userId", "is not a field of a trade event")
    assert parse_item([1]) == ItemError("", "an item must be a JSON object")


def test_the_seen_window_is_bounded_per_user_and_remembers_offsets():
    seen = SeenIds(per_user=3)
    for n in range(4):
        seen.add("u", f"id-{n}", n)
    assert seen.seen("u", "id-0") == (False, None)  # out of the window
    assert seen.seen("u", "id-3") == (True, 3) and seen.seen("v", "id-3") == (False, None)
    seen.add("v", "x", None)
    assert seen.seen("v", "x") == (True, None)


# ---- the strict grammar, the ranges, the symbols (a new user's trial found Decimal() took them all) ----
LOOSE_DECIMALS = ["1_000", " 1", "1 ", "\t1", "1\n", "+5", ".5", "5.", "1e5", "1E5", "1e-5", "NaN", "nan", "sNaN",
                  "Infinity", "-Infinity", "inf", "007", "00", "-01", "0x10", "1,5", "1.2.3", "--1", "- 1", "",
                  "\u0663", "\u0661\u0660\u0660", "\uff11", "\uff11\uff10", "\u0967", "1\u00a0", "\u2212" "5"]


@pytest.mark.parametrize("value", LOOSE_DECIMALS)
@pytest.mark.parametrize("kind,field", [(kind, wire_name) for kind, cls in TYPES.items()
                                        for wire_name, (_, typ, _) in _FIELDS[cls].items() if typ is Decimal])
def test_a_decimal_outside_the_one_grammar_is_refused_by_name(kind, field, value):
    it = item(kind)
    it["data"][field] = value
    result = parse_item(it)
    assert isinstance(result, ItemError) and result.field == f"data.{field}", (value, result)
    assert "decimal" in result.message


@pytest.mark.parametrize("value,number", [("0", "0"), ("0.5", "0.5"), ("100", "100"), ("100.00", "100.00"),
                                          ("123456789012345.5", "123456789012345.5"), ("0.000000000001", "1E-12")])
def test_plain_decimals_are_read_exactly(value, number):
    assert parse_decimal(value, UNSIGNED) == (Decimal(number), None)


def test_negative_zero_is_zero_where_a_sign_is_allowed_and_refused_where_none_is():
    number, problem = parse_decimal("-0.00")
    assert problem is None and number == 0 and not number.is_signed() and wire.money(number) == "0.00"
    assert parse_decimal("-0", UNSIGNED)[1] and parse_decimal("-0", POSITIVE)[1]


SIGN_CASES = [("trade", "quantity", "0"), ("trade", "quantity", "-1"), ("trade", "price", "0"),
              ("trade", "price", "-520.50"), ("position", "quantity", "-1"), ("position", "marketValue", "-17620.00"),
              ("position", "currentPrice", "-1"), ("position", "entryPrice", "-0.01"), ("order", "qty", "-5"),
              ("order", "filledQty", "-1"), ("order", "limitPrice", "0"), ("order", "stopPrice", "-1"),
              ("order", "filledAvgPrice", "0.00")]


@pytest.mark.parametrize("kind,field,value", SIGN_CASES)
def test_a_value_outside_its_fields_range_is_refused_by_name(kind, field, value):
    it = item(kind)
    it["data"][field] = value
    result = parse_item(it)
    assert isinstance(result, ItemError) and result.field == f"data.{field}", result


def test_every_decimal_field_has_the_range_the_integration_guide_gives_it():
    guide = (ROOT / "docs" / "integration.md").read_text()
    rows = {label: line for line in guide.splitlines() for label in ("more than zero", "zero or more", "signed")
            if line.startswith(f"  | {label} ")}
    for kind, cls in TYPES.items():
        for wire_name, (_, typ, _) in _FIELDS[cls].items():
            if typ is Decimal:
                sign = RANGES[kind].get(wire_name, SIGNED)
                row = rows[{POSITIVE: "more than zero", UNSIGNED: "zero or more", SIGNED: "signed"}[sign]]
                assert f"`{wire_name}`" in row, (kind, wire_name, sign)


def test_an_order_filled_beyond_its_quantity_is_refused():
    it = item("order")
    it["data"].update(qty="5", filledQty="6")
    assert parse_item(it) == ItemError("data.filledQty", "must not exceed qty")
    it["data"].update(qty="0", filledQty="0")  # a notional order not yet filled
    assert isinstance(parse_item(it), Item)


BAD_SYMBOLS = ["<script>", "A\u0000", "", " AAPL", "AAPL ", "aapl", "Aapl", "A" * 33, ".A", "/USD", "-A", "AA PL",
               "BTC\\USD", "AAPL\n", "\uff21\uff21\uff30\uff2c", "\u00c4PPL", "AAPL\u200b", 5, ["AAPL"]]


@pytest.mark.parametrize("kind", ["position", "order", "trade"])
@pytest.mark.parametrize("symbol", BAD_SYMBOLS)
def test_a_symbol_outside_the_grammar_is_refused_by_name(kind, symbol):
    it = item(kind)
    it["data"]["symbol"] = symbol
    result = parse_item(it)
    assert isinstance(result, ItemError) and result.field == "data.symbol", result
    assert ("uppercase" in result.message) is True


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "BTC/USD", "ETHUSD", "AAPL240119C00150000", "BF-B", "A" * 32, "1"])
def test_alpacas_symbols_are_taken_as_they_are(symbol):
    it = item("trade")
    it["data"]["symbol"] = symbol
    parsed = parse_item(it)
    assert isinstance(parsed, Item) and parsed.event.symbol == symbol


@pytest.mark.parametrize("field", ["tradeId", "strategyId", "orderId"])
@pytest.mark.parametrize("text", ["a\u0000b", "a\nb", "a\tb", "a\u202eb", "a\u200bb", "a\u2028b", "\u007f", "a\u0085b"])
def test_text_with_control_or_format_characters_is_refused_by_name(field, text):
    it = item("trade")
    it["data"][field] = text
    result = parse_item(it)
    assert isinstance(result, ItemError) and result.field == f"data.{field}", result
    assert isinstance(parse_item({**item("trade"), "id": text}), ItemError)


@pytest.mark.parametrize("text", ["strategy 1", "Stratégie 1", "戦略", "s-1_x.y"])
def test_printable_text_in_any_script_is_taken(text):
    it = item("trade")
    it["data"]["strategyId"] = text
    parsed = parse_item(it)
    assert isinstance(parsed, Item) and parsed.event.strategy_id == text


@pytest.mark.parametrize("value", ["LIMIT", "stop limit", "<b>", "limit\n", "", "a" * 33])
def test_an_order_type_outside_its_grammar_is_refused(value):
    it = item("order")
    it["data"]["type"] = value
    assert isinstance(result := parse_item(it), ItemError) and result.field == "data.type"


@pytest.mark.parametrize("value", ["2026-01-05 15:30:00Z", "2026-01-05T15:30Z", "2026-01-05T15Z", "20260105T153000Z",
                                   "2026-W02-1T15:30:00Z", "2026-01-05T15:30:00+0530", "2026-01-05T15:30:00,5Z",
                                   "2026-01-05T15:30:00 Z", "2026-01-05t15:30:00z", "2026-01-05T15:30:00.Z",
                                   "2026-01-05T15:30:00.1234567890Z", "2026-02-30T15:30:00Z", "2026-01-05T24:00:00Z",
                                   "\uff12026-01-05T15:30:00Z", "2026-01-05", "2026-01-05T15:30:00"])
def test_a_time_outside_rfc_3339_is_refused(value):
    it = item("trade")
    it["data"]["executedAt"] = value
    assert isinstance(result := parse_item(it), ItemError) and result.field == "data.executedAt", value


@pytest.mark.parametrize("value,expected", [("2026-01-05T15:30:00Z", "2026-01-05T15:30:00.000Z"),
                                            ("2026-01-05T10:30:00-05:00", "2026-01-05T15:30:00.000Z"),
                                            ("2026-01-05T15:30:00.123456789Z", "2026-01-05T15:30:00.123Z")])
def test_rfc_3339_times_are_read(value, expected):
    it = item("trade")
    it["data"]["executedAt"] = value
    parsed = parse_item(it)
    assert isinstance(parsed, Item) and wire.timestamp(parsed.event.executed_at) == expected
