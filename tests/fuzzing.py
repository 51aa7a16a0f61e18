"""The shared settings and reply check of the fuzz tests (the core and the socket)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings

from portfolio_ws import constants as c

CASES: Counter[str] = Counter()


DATA_TYPES = {"position_update", "order_update", "account_update", "trade_executed", "batch", "snapshot"}


ERROR_CODES = {c.INVALID_JSON, c.INVALID_MESSAGE, c.UNKNOWN_MESSAGE_TYPE, c.SUBSCRIPTION_FAILED}


FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def decode(frame: str) -> dict[str, Any]:
    """A frame as a client decodes it: UTF-8 bytes, strict JSON (no NaN), the envelope."""
    msg = json.loads(frame.encode("utf-8").decode("utf-8"),
                     parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert set(msg) - {"seq"} == {"type", "timestamp", "userId", "data"}, msg
    assert ("seq" in msg) == (msg["type"] in DATA_TYPES), msg
    return msg


def check_reply(tag: Any, messages: list[dict[str, Any]]) -> None:
    assert messages, "no reply"
    first = messages[0]
    if tag is None:  # any documented reply
        assert (first["type"], first["data"].get("code")) in {("pong", None), ("info", c.SUBSCRIBED),
                                                               ("info", c.UNSUBSCRIBED)} \
            or (first["type"] == "error" and first["data"]["code"] in ERROR_CODES), first
    else:
        kind, code = tag
        assert first["type"] == kind and first["data"].get("code") == code, (tag, first)
    if first["type"] == "error":
        assert len(messages) == 1 and set(first["data"]) == {"code", "message", "details"}
    elif first["type"] == "pong":
        assert len(messages) == 1 and first["data"] == {}
    else:  # SUBSCRIBED may be followed by RESUMED and a replay or snapshot; UNSUBSCRIBED by nothing
        assert all(m["type"] in {"info", "snapshot"} | DATA_TYPES for m in messages[1:])
