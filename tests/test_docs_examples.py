"""docs/protocol.md can't drift silently: its JSON examples parse and have the payload fields the
server sends, and every close reason, code and wire name in portfolio_ws/constants.py is in it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from portfolio_ws import constants as c
from portfolio_ws.core import wire
from portfolio_ws.settings import LimitSettings
from tests import ROOT
from tests.builders import account, order, position, trade

DOC = ROOT / "docs" / "protocol.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```json\n(.*?)^```$", TEXT, flags=re.S | re.M)

# The keys of each channel's payload, in wire order, from the real formatter.
FIELDS = {
    c.POSITIONS: list(wire.payload(position("u"))),
    c.ORDERS: list(wire.payload(order("u"))),
    c.ACCOUNT: list(wire.payload(account("u"))),
    c.TRADES: list(wire.payload(trade("u"))),
}
EVENT_CHANNEL = {c.POSITION_UPDATE: c.POSITIONS, c.ORDER_UPDATE: c.ORDERS,
                 c.ACCOUNT_UPDATE: c.ACCOUNT, c.TRADE_EXECUTED: c.TRADES}
DATA_TYPES = {*EVENT_CHANNEL, c.BATCH, c.SNAPSHOT}


def examples() -> list[Any]:
    return [json.loads(block) for block in BLOCKS]


def test_every_json_block_is_valid_json() -> None:
    assert len(BLOCKS) >= 15
    for block in BLOCKS:
        try:
            json.loads(block)
        except ValueError as exc:
            pytest.fail(f"invalid JSON in docs/protocol.md ({exc}):\n{block}")


def test_every_server_message_type_has_an_example_with_the_real_envelope() -> None:
    server = [m for m in examples() if isinstance(m, dict) and "type" in m and "userId" in m]
    seen = {m["type"] for m in server}
    assert seen >= DATA_TYPES | {c.INFO, c.ERROR, c.PONG}
    for msg in server:
        assert list(msg)[:3] == ["type", "timestamp", "userId"], msg
        assert ("seq" in msg) is (msg["type"] in DATA_TYPES), msg
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", msg["timestamp"])


def test_example_payloads_have_exactly_the_fields_the_server_sends() -> None:
    def check(channel: str, payload: Any) -> None:
        assert list(payload) == FIELDS[channel], (channel, payload)

    for msg in examples():
        if not isinstance(msg, dict) or msg.get("type") not in DATA_TYPES:
            continue
        data = msg["data"]
        if msg["type"] in EVENT_CHANNEL:
            check(EVENT_CHANNEL[msg["type"]], data)
            continue
        for channel, value in data.items():
            items = [value] if channel == c.ACCOUNT else value
            for item in items:
                if item is not None:
                    check(channel, item)


def close_reasons() -> list[c.Close]:
    closes = [value for value in vars(c).values() if isinstance(value, c.Close)]
    return closes + [c.user_limit_close(LimitSettings().connections_per_user)]


@pytest.mark.parametrize("close", close_reasons(), ids=lambda close: close.reason)
def test_every_close_reason_is_in_the_close_code_table(close: c.Close) -> None:
    rows = [line for line in TEXT.splitlines() if line.startswith(f"| {close.code} |")]
    assert any(close.reason in row for row in rows), f"no '| {close.code} |' row naming {close.reason!r}"


def test_every_code_and_wire_name_is_documented() -> None:
    names = [value for key, value in vars(c).items() if isinstance(value, str) and not key.startswith("__")]
    names += list(c.CHANNELS) + list(c.ORDER_STATUSES) + list(c.CLIENT_MESSAGE_TYPES)
    missing = sorted({name for name in names if f"`{name}`" not in TEXT and f'"{name}"' not in TEXT})
    assert not missing, f"not in docs/protocol.md: {missing}"
