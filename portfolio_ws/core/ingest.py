"""Published events (``POST /api/v1/publish``) from JSON to events: the field rules of a batch item.

An item is ``{"type": "position"|"order"|"account"|"trade", "userId", "id", "data"}``. ``data``
holds the event's fields by their wire names (``currentPrice``, ``filledQty``...: the camelCase of
``core.events``' fields, the names clients read in docs/protocol.md). The event classes are the one
schema: kinds (Decimal, time, text) come from their fields, and their constructors apply the rules
every feed's events obey (sides, statuses, unsigned quantities). Money, prices and quantities are
decimal STRINGS (a JSON number would have passed through a float); times ISO 8601 with a zone.

Sans-I/O: ``parse_item`` returns the event or an ``ItemError`` naming the field; nothing is raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import InvalidEvent
from .events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted, schema

TYPES: dict[str, type] = {"position": PositionUpdate, "order": OrderUpdate, "account": AccountUpdate,
                          "trade": TradeExecuted}
ID_MAX = 128       # characters of an item's id
TEXT_MAX = 256     # characters of any text field (symbols, order ids...)
DECIMAL_MAX = 64   # characters of a decimal string: no 10,000-digit numbers to do arithmetic on
# "1e999999999" is finite yet can't be rounded to cents (the wire formatting would fail for that
# user), and "1e-999998" would be written out as a million zeros; no price, amount or quantity is
# beyond 10**15 or, unless zero, below 10**-12. Digits are bounded by DECIMAL_MAX (a P&L percent
# computed by division has 28 of them, and is fine).
MAGNITUDE_DIGITS = 15   # below 10**15
SMALLEST_DIGITS = -12   # at least 10**-12 unless zero
# Times the engine can place on a New York trading day: year 1 or the last hours of 9999 overflow
# ``datetime`` when moved to New York's zone, and no brokerage event predates 1970.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)


def placeable(moment: datetime) -> bool:
    """Whether the aware ``moment`` lies in [EARLIEST, LATEST)."""
    return EARLIEST <= moment < LATEST


# Per class: wire name -> (field name, kind, optional); user_id comes from the item's userId.
# Names and kinds come from the events' own schema table (``events.schema``), the one feeds obey.
_FIELDS: dict[type, dict[str, tuple[str, type, bool]]] = {
    cls: {f.wire: (f.name, f.kind, f.optional) for f in schema(cls) if f.name != "user_id"}
    for cls in TYPES.values()
}
_WIRE_NAME = {cls: {name: wire for wire, (name, _, _) in spec.items()} for cls, spec in _FIELDS.items()}


@dataclass(frozen=True)
class ItemError:
    field: str     # "type", "userId", "id", "data", or "data.<wire name>"
    message: str


@dataclass(frozen=True)
class Item:
    id: str
    user_id: str
    event: Event


def _text(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _value(kind: type, value: Any) -> tuple[Any, str | None]:
    """(the parsed value, None) or (None, what is wrong)."""
    if kind is Decimal:
        if not isinstance(value, str) or len(value) > DECIMAL_MAX:
            return None, f'must be a decimal string of at most {DECIMAL_MAX} characters, e.g. "176.20"'
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None, f"is not a decimal number: {value[:DECIMAL_MAX]!r}"
        if not number.is_finite():
            return None, "must be a finite decimal"
        if number and not SMALLEST_DIGITS <= number.adjusted() < MAGNITUDE_DIGITS:
            return None, f"must be zero or between 10^{SMALLEST_DIGITS} and 10^{MAGNITUDE_DIGITS} in magnitude"
        return number, None
    if kind is datetime:
        if not isinstance(value, str) or len(value) > 40:
            return None, 'must be an ISO 8601 time with a zone, e.g. "2026-01-05T15:30:00.000Z"'
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None, f"is not an ISO 8601 time: {value!r}"
        if moment.tzinfo is None:
            return None, "must name its zone (Z or +hh:mm)"
        if not placeable(moment):
            return None, "must lie between 1970-01-01 and 9999-01-01 (UTC)"
        return moment, None
    text = _text(value, TEXT_MAX)
    if text is None:
        return None, f"must be a non-empty string of at most {TEXT_MAX} characters"
    return text, None


def parse_item(item: Any) -> Item | ItemError:
    """The published item as an event, or the first thing wrong with it."""
    if not isinstance(item, dict):
        return ItemError("", "an item must be a JSON object")
    kind = item.get("type")
    cls = TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return ItemError("type", f"must be one of {', '.join(TYPES)}")
    user_id = _text(item.get("userId"), TEXT_MAX)
    if user_id is None:
        return ItemError("userId", f"must be a non-empty string of at most {TEXT_MAX} characters")
    item_id = _text(item.get("id"), ID_MAX)
    if item_id is None:
        return ItemError("id", f"must be a non-empty string of at most {ID_MAX} characters (it makes a retry safe)")
    extra = set(item) - {"type", "userId", "id", "data"}
    if extra:
        return ItemError(sorted(extra)[0], "is not an item field (type, userId, id, data)")
    data = item.get("data")
    if not isinstance(data, dict):
        return ItemError("data", "must be a JSON object of the event's fields")
    spec = _FIELDS[cls]
    for name in data:
        if name not in spec:
            return ItemError(f"data.{name}", f"is not a field of a {item['type']} event")
    values: dict[str, Any] = {"user_id": user_id}
    for wire_name, (name, kind, optional) in spec.items():
        raw = data.get(wire_name)
        if raw is None:
            if not optional:
                return ItemError(f"data.{wire_name}", "is required")
            values[name] = None
            continue
        parsed, problem = _value(kind, raw)
        if problem is not None:
            return ItemError(f"data.{wire_name}", problem)
        values[name] = parsed
    try:
        event: Event = cls(**values)
    except InvalidEvent as exc:  # a rule across values: "OrderUpdate.side must be buy or sell, ..."
        text = str(exc)
        named = text.split(" ", 1)[0].split(".", 1)[-1]
        wire = _WIRE_NAME[cls].get(named)
        return ItemError(f"data.{wire}" if wire else "data", text)
    return Item(item_id, user_id, event)
