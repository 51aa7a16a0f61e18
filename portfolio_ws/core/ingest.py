"""Published events (``POST /api/v1/publish``) from JSON to events: the field rules of a batch item.

An item is ``{"type": "position"|"order"|"account"|"trade", "userId", "id", "data"}``. ``data``
holds the event's fields by their wire names (``currentPrice``, ``filledQty``...: the camelCase of
``core.events``' fields, the names clients read in docs/protocol.md). The event classes are the one
schema: kinds (Decimal, time, text) come from their fields, and their constructors apply the rules
every feed's events obey (sides, statuses, unsigned quantities). Money, prices and quantities are
decimal STRINGS (a JSON number would have passed through a float) in one strict grammar
(``DECIMAL``: ASCII digits, an optional "-" and "." fraction; no spaces, "+", exponent, leading
zeros, NaN or Infinity, which Python's ``Decimal()`` would all take), each field in its documented
range (``RANGES``); symbols in ``SYMBOL``'s grammar (uppercase: "aapl" is refused, not read as
AAPL); text without control or format characters; times in RFC 3339 (``TIME``).

Sans-I/O: ``parse_item`` returns the event or an ``ItemError`` naming the field; nothing is raised.
"""

from __future__ import annotations

import re
import unicodedata
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
# The one decimal grammar of everything published (HTTP, a Redis stream's entries, a sync): JSON's
# number grammar without its exponent, as a string. ``[0-9]`` is ASCII only (Python's ``\d`` and
# ``Decimal()`` take Arabic-Indic or full-width digits too).
DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
DECIMAL_HINT = ('must be a plain decimal string: ASCII digits, an optional leading "-" and "." fraction, '
                'no spaces, "+", exponent or leading zeros, e.g. "176.20"')
# Ranges of the decimal fields (docs/integration.md, section 3); a field not listed is signed.
SIGNED, UNSIGNED, POSITIVE = "signed", "unsigned", "positive"
RANGES: dict[str, dict[str, str]] = {
    "position": {"quantity": UNSIGNED, "currentPrice": UNSIGNED, "entryPrice": UNSIGNED, "marketValue": UNSIGNED},
    "order": {"qty": UNSIGNED, "filledQty": UNSIGNED, "filledAvgPrice": POSITIVE, "limitPrice": POSITIVE,
              "stopPrice": POSITIVE},
    "trade": {"quantity": POSITIVE, "price": POSITIVE},
    "account": {},
}
_RANGE_PROBLEM = {UNSIGNED: 'must be zero or more (unsigned: no "-")', POSITIVE: "must be more than zero"}
# Symbols as Alpaca writes them: AAPL, BRK.B, BTC/USD, option contracts (AAPL240119C00150000).
SYMBOL_MAX = 32
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9./-]{0,31}")
SYMBOL_HINT = ('must be 1 to 32 characters: uppercase A-Z, digits, ".", "/", "-", starting with a letter '
               'or digit, e.g. "AAPL", "BRK.B", "BTC/USD"')
ORDER_TYPE = re.compile(r"[a-z][a-z_]{0,31}")  # market, limit, stop, stop_limit, trailing_stop...
# Times in RFC 3339's grammar (ISO 8601's profile for the internet), ASCII digits, seconds and a zone
# always; ``datetime.fromisoformat`` alone also takes "2026-01-05 15:30Z", "20260105T1530Z", week dates.
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})")
TIME_HINT = ('must be an RFC 3339 time with seconds and a zone (Z or +hh:mm), e.g. "2026-01-05T15:30:00.000Z" '
             'or "2026-01-05T10:30:00-05:00"')
# Characters refused in any text: controls (NUL, line breaks...), format characters (bidi overrides,
# zero-width), line/paragraph separators, surrogates: they break logs and spoof what a screen shows.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
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


def printable(text: str) -> bool:
    """No control, format, separator or surrogate character in ``text``."""
    return text.isprintable() or not any(unicodedata.category(ch) in _UNPRINTABLE for ch in text)


def parse_decimal(value: Any, sign: str = SIGNED) -> tuple[Decimal | None, str | None]:
    """(the number, None) or (None, what is wrong): ``value`` in the ``DECIMAL`` grammar, within
    ``sign``'s range and the magnitudes the engine can round. "-0" is zero."""
    if not isinstance(value, str) or len(value) > DECIMAL_MAX:
        return None, f'must be a decimal string of at most {DECIMAL_MAX} characters, e.g. "176.20"'
    if DECIMAL.fullmatch(value) is None:
        return None, f"{DECIMAL_HINT}; got {value[:DECIMAL_MAX]!r}"
    try:
        number = Decimal(value)
    except InvalidOperation:  # the grammar is Decimal's subset: not reached
        return None, f"{DECIMAL_HINT}; got {value!r}"
    if number.is_signed() and sign != SIGNED or number <= 0 and sign == POSITIVE:
        return None, _RANGE_PROBLEM[sign]
    if number and not SMALLEST_DIGITS <= number.adjusted() < MAGNITUDE_DIGITS:
        return None, f"must be zero or between 10^{SMALLEST_DIGITS} and 10^{MAGNITUDE_DIGITS} in magnitude"
    return (number.copy_abs() if not number else number), None


def _value(kind: type, value: Any, wire_name: str, sign: str) -> tuple[Any, str | None]:
    """(the parsed value, None) or (None, what is wrong)."""
    if kind is Decimal:
        return parse_decimal(value, sign)
    if kind is datetime:
        if not isinstance(value, str) or len(value) > 40 or TIME.fullmatch(value) is None:
            got = repr(value[:40]) if isinstance(value, str) else f"a JSON {type(value).__name__}"
            return None, f"{TIME_HINT}; got {got}"
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None, f"is not a valid time: {value!r}"
        if not placeable(moment):
            return None, "must lie between 1970-01-01 and 9999-01-01 (UTC)"
        return moment, None
    if wire_name == "symbol":
        if not isinstance(value, str) or SYMBOL.fullmatch(value) is None:
            upper = " (symbols are uppercase)" if isinstance(value, str) and SYMBOL.fullmatch(value.upper()) else ""
            got = repr(value[:SYMBOL_MAX]) if isinstance(value, str) else f"a JSON {type(value).__name__}"
            return None, f"{SYMBOL_HINT}; got {got}{upper}"
        return value, None
    text = _text(value, TEXT_MAX)
    if text is None:
        return None, f"must be a non-empty string of at most {TEXT_MAX} characters"
    if wire_name == "type":
        if ORDER_TYPE.fullmatch(text) is None:
            return None, f'must be lowercase letters and "_" (market, limit, stop, stop_limit...); got {text[:32]!r}'
    elif not printable(text):
        return None, "must not hold control or format characters (NUL, line breaks, bidi or zero-width marks)"
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
    if item_id is None or not printable(item_id):
        return ItemError("id", f"must be a non-empty string of at most {ID_MAX} characters, without control "
                               "or format characters (it makes a retry safe)")
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
    ranges = RANGES[item["type"]]
    for wire_name, (name, kind, optional) in spec.items():
        raw = data.get(wire_name)
        if raw is None:
            if not optional:
                return ItemError(f"data.{wire_name}", "is required")
            values[name] = None
            continue
        parsed, problem = _value(kind, raw, wire_name, ranges.get(wire_name, SIGNED))
        if problem is not None:
            return ItemError(f"data.{wire_name}", problem)
        values[name] = parsed
    if cls is OrderUpdate and values["filled_qty"] > values["qty"]:
        return ItemError("data.filledQty", "must not exceed qty")
    try:
        event: Event = cls(**values)
    except InvalidEvent as exc:  # a rule across values: "OrderUpdate.side must be buy or sell, ..."
        text = str(exc)
        named = text.split(" ", 1)[0].split(".", 1)[-1]
        wire = _WIRE_NAME[cls].get(named)
        return ItemError(f"data.{wire}" if wire else "data", text)
    return Item(item_id, user_id, event)
