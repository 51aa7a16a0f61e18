"""Hostile client frames as hypothesis strategies, each tagged with the reply PROTOCOL.md documents
for it, so a property test can check the exact error without re-implementing the parser.

A tag is ``(type, code)``: ``("error", "INVALID_JSON")``, ``("info", "SUBSCRIBED")``,
``("pong", None)``; ``None`` when any documented reply will do (arbitrary text).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from portfolio_ws import constants as c

Tag = "tuple[str, str | None] | None"
CHANNELS = list(c.CHANNELS)
ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from([
    "", " ", "\u0000", "\ufeff", "\u202e", "e\u0301", "\U0001F4A9", "\uffff", "subscribe\u0000",
    "SUBSCRIBE", "Subscribe", "subscribe ", "positions\u200b", "ping\n", "null", "__proto__", "constructor",
])
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ODD_TEXT
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(ODD_TEXT, inner, max_size=4), max_leaves=12)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def with_extra(draw: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Unknown fields are ignored: sprinkle some in."""
    extra = draw(st.dictionaries(ODD_TEXT.filter(lambda k: k not in ("type", "channels", "resumeFrom")),
                                 JSON_VALUES, max_size=2))
    return {**extra, **message}


@st.composite
def valid_message(draw: Any) -> tuple[str, Tag]:
    kind = draw(st.sampled_from(["subscribe", "unsubscribe", "ping"]))
    if kind == "ping":
        return dumps(with_extra(draw, {"type": "ping"})), ("pong", None)
    channels = draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=6))
    message: dict[str, Any] = {"type": kind, "channels": channels}
    if kind == "subscribe" and draw(st.booleans()):
        message["resumeFrom"] = draw(st.none() | st.integers(0, 2**53))
    return dumps(with_extra(draw, message)), ("info", "SUBSCRIBED" if kind == "subscribe" else "UNSUBSCRIBED")


@st.composite
def malformed_json(draw: Any) -> tuple[str, Tag]:
    valid, _ = draw(valid_message())
    choice = draw(st.integers(0, 5))
    if choice == 0:  # cut short
        text = valid[:draw(st.integers(0, max(0, len(valid) - 1)))]
    elif choice == 1:  # trailing garbage
        text = valid + draw(st.sampled_from(["}", ",", "x", "{}", "]", " ,"]))
    elif choice == 2:  # single quotes, unquoted keys, comments, trailing commas
        text = draw(st.sampled_from(["{'type': 'ping'}", "{type: \"ping\"}", "{\"type\": \"ping\",}",
                                     "/* x */ {\"type\": \"ping\"}", "{\"type\": \"ping\"} // x",
                                     "[1, 2,]", "{\"a\" \"b\"}"]))
    elif choice == 3:  # not JSON constants
        text = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "undefined", "None", "True",
                                     "{\"type\": NaN}", "{\"resumeFrom\": Infinity}", "0x10", "01", ".5"]))
    elif choice == 4:  # bad escapes and control characters inside strings
        text = draw(st.sampled_from(["{\"type\": \"\\x41\"}", "{\"type\": \"\\u12\"}", "\"\\\"",
                                     "{\"type\": \"a\u0001b\"}"[:0] + "{\"type\": \"ping\"", "{\"type\": \"\\q\"}"]))
    else:  # empty or blank
        text = draw(st.sampled_from(["", " ", "\n", "\t\r\n "]))
    return text, ("error", "INVALID_JSON")


@st.composite
def deep_nesting(draw: Any) -> tuple[str, Tag]:
    opener, closer = draw(st.sampled_from([("[", "]"), ("{\"a\":", "}")]))
    depth = draw(st.integers(1, 4000 // len(opener + closer)))  # within the 4 KiB message limit
    text = opener * depth + "1" + closer * depth
    if depth > 1000:  # beyond any sane parser's depth: refused as invalid JSON or as not a message
        return text, None
    return text, ("error", "INVALID_MESSAGE") if opener == "[" else None


@st.composite
def wrong_shape(draw: Any) -> tuple[str, Tag]:
    """Valid JSON that is not a valid message, tagged with its documented error."""
    choice = draw(st.integers(0, 6))
    if choice == 0:  # not an object
        value = draw(JSON_SCALARS | st.lists(JSON_VALUES, max_size=3))
        return dumps(value), ("error", "INVALID_MESSAGE")
    if choice == 1:  # no string type
        value = draw(st.dictionaries(ODD_TEXT.filter(lambda k: k != "type"), JSON_VALUES, max_size=3))
        if draw(st.booleans()):
            value["type"] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, str)))
        return dumps(value), ("error", "INVALID_MESSAGE")
    if choice == 2:  # unknown type
        kind = draw(ODD_TEXT.filter(lambda k: k not in c.CLIENT_MESSAGE_TYPES))
        return dumps(with_extra(draw, {"type": kind})), ("error", "UNKNOWN_MESSAGE_TYPE")
    kind = draw(st.sampled_from(["subscribe", "unsubscribe"]))
    if choice == 3:  # channels missing, empty, not a list, or holding non-strings
        bad = draw(st.sampled_from([None, [], "positions", {"positions": True}, 1, [1], ["positions", None],
                                    [["positions"]]]) | JSON_SCALARS)
        message = {"type": kind} if bad is None else {"type": kind, "channels": bad}
        return dumps(message), ("error", "INVALID_MESSAGE")
    if choice == 4:  # an unknown channel among valid ones
        unknown = draw(ODD_TEXT.filter(lambda ch: ch not in CHANNELS))
        channels = draw(st.lists(st.sampled_from(CHANNELS), max_size=3))
        channels.insert(draw(st.integers(0, len(channels))), unknown)
        return dumps({"type": kind, "channels": channels}), ("error", "SUBSCRIPTION_FAILED")
    # a bad resumeFrom on a subscribe with valid channels
    bad_resume = draw(st.integers(max_value=-1) | st.floats(allow_nan=False, allow_infinity=False)
                      | st.booleans() | ODD_TEXT | st.lists(st.integers(), max_size=2))
    return dumps({"type": "subscribe", "channels": ["positions"], "resumeFrom": bad_resume}), \
        ("error", "INVALID_MESSAGE")


@st.composite
def binary(draw: Any) -> tuple[bytes, Tag]:
    data = draw(st.binary(max_size=64) | st.sampled_from([b'{"type":"ping"}', b"\xff\xfe", b""]))
    return data, ("error", "INVALID_MESSAGE")


@st.composite
def oversized(draw: Any) -> tuple[str, Tag]:
    """Large frames reach the engine only below the size limit (streaming.max_message_bytes, 4 KiB;
    Tornado closes 1009 above it); the engine must answer them like any other."""
    size = draw(st.integers(1000, 4000))
    if draw(st.booleans()):
        return dumps({"type": "ping", "pad": "x" * size}), ("pong", None)
    return "x" * size, ("error", "INVALID_JSON")


def hostile_frames() -> st.SearchStrategy[tuple[str | bytes, Any]]:
    arbitrary = st.text(max_size=200).map(lambda t: (t, None))  # anything at all, lone surrogates included
    return st.one_of(valid_message(), malformed_json(), deep_nesting(), wrong_shape(), binary(), oversized(),
                     arbitrary)
