"""Strict JSON: the one reader of the JSON other programs hand us (HTTP bodies, a Redis stream's
entries, WebSocket client messages).

Rule 1: RFC 8259 exactly: no ``NaN``/``Infinity``, no leading zeros, no raw control characters in
strings (ujson takes all three), and bytes must be UTF-8 (``json.loads`` would guess UTF-16 or -32).
Rule 2: with ``unique_names`` (bodies and entries), a name appears at most once in an object:
parsers disagree on which of two wins (Python and ujson keep the last, others the first), so a
platform's own check and ours could read different values from one body; and no number overflows
a float (``1e999``). WebSocket messages keep their documented reading (the last name wins).
"""

from __future__ import annotations

import json
from typing import Any


class NotJson(ValueError):
    """Why the text is not (strict) JSON; safe to show the sender: it never quotes their data
    beyond a name that appears twice (at most 64 characters)."""


def _not_json(constant: str) -> Any:
    raise NotJson(f"{constant} is not JSON")


def _number(text: str) -> float:
    value = float(text)
    if value in (_INFINITY, -_INFINITY):
        raise NotJson("a number out of range (1e999 is not a number a float can hold)")
    return value


_INFINITY = float("inf")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))  # type: ignore[func-returns-value]
        raise NotJson(f"the name {twice[:64]!r} appears twice in one object")
    return obj


_decode = json.JSONDecoder(parse_constant=_not_json, strict=True).decode
_decode_unique = json.JSONDecoder(parse_constant=_not_json, parse_float=_number, strict=True,
                                  object_pairs_hook=_unique).decode


def loads(data: bytes | str, unique_names: bool = True) -> Any:
    """The JSON value of ``data``; raises ``NotJson`` (a ValueError) saying why not."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return (_decode_unique if unique_names else _decode)(text)
    except NotJson:
        raise
    except UnicodeDecodeError:
        raise NotJson("not UTF-8") from None
    except RecursionError:
        raise NotJson("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError: "Expecting value: line 1 column 5 (char 4)"; int digits
        raise NotJson(str(exc).split("\n", 1)[0][:120]) from None
