"""core.ingest: every field of every event type, by kind, is read or refused with its name; and
core.seen keeps a bounded window of ids per user."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_ws.core import wire
from portfolio_ws.core.ingest import _FIELDS, TYPES, Item, ItemError, parse_item
from portfolio_ws.core.seen import SeenIds
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
