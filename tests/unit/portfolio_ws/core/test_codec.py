"""The event codec between processes: exact round trips, garbage refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import ujson

from portfolio_ws.core.codec import from_dict, to_dict
from portfolio_ws.errors import InvalidEvent
from tests.builders import account, order, position, trade


@pytest.mark.parametrize("event", [
    position("u1", qty="0.50", price="175.5000", entry="1E+2"),
    position("u1", qty="0", side="short"),
    order("u1", status="filled", filled="50", avg="246.0100"),
    order("u1"),
    account("u1", equity="-0.0001"),
    trade("u1", pnl=None),
    trade("u1", pnl="-12.340"),
])
def test_round_trip_is_exact_through_json(event) -> None:
    back = from_dict(ujson.loads(ujson.dumps(to_dict(event))))
    assert back == event
    for name in event.__dataclass_fields__:
        value, again = getattr(event, name), getattr(back, name)
        assert type(value) is type(again)
        if isinstance(value, Decimal):
            assert value.as_tuple() == again.as_tuple()  # 1.50 stays 1.50, not 1.5


def test_datetimes_keep_microseconds_and_offset() -> None:
    moment = datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    event = replace(trade("u1"), executed_at=moment)
    again = from_dict(to_dict(event)).executed_at  # type: ignore[union-attr]
    assert again == moment and again.utcoffset() == moment.utcoffset() and again.microsecond == 123456


@pytest.mark.parametrize("garbage", [
    {}, {"event": "nope"}, {**to_dict(position("u1")), "quantity": "lots"},
    {**to_dict(position("u1")), "quantity": "NaN"}, {**to_dict(trade("u1")), "executed_at": "yesterday"},
])
def test_garbage_is_an_invalid_event(garbage) -> None:
    with pytest.raises(InvalidEvent):
        from_dict(garbage)
