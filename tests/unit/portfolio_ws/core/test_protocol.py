"""Client messages: every shape a client can send, and the error code it gets for each mistake."""

from __future__ import annotations

import pytest
import ujson

from portfolio_ws.core.protocol import ClientError, Ping, Subscribe, Unsubscribe, ordered, parse

VALID = ["positions", "orders", "account", "trades"]


def error(frame: str | bytes) -> ClientError:
    result = parse(frame)
    assert isinstance(result, ClientError), result
    return result


def test_subscribe() -> None:
    assert parse('{"type": "subscribe", "channels": ["positions", "orders"]}') == \
        Subscribe(frozenset({"positions", "orders"}))


def test_subscribe_with_resume_from() -> None:
    assert parse('{"type": "subscribe", "channels": ["trades"], "resumeFrom": 812}') == \
        Subscribe(frozenset({"trades"}), 812)
    assert parse('{"type": "subscribe", "channels": ["trades"], "resumeFrom": 0}') == \
        Subscribe(frozenset({"trades"}), 0)
    assert parse('{"type": "subscribe", "channels": ["trades"], "resumeFrom": null}') == \
        Subscribe(frozenset({"trades"}))


def test_unsubscribe() -> None:
    assert parse('{"type": "unsubscribe", "channels": ["account"]}') == Unsubscribe(frozenset({"account"}))


def test_ping() -> None:
    assert parse('{"type": "ping"}') == Ping()
    assert parse('{"type": "ping", "id": 3}') == Ping()


@pytest.mark.parametrize("frame", ["", "{", "not json", '{"type": "ping"', "{'type': 'ping'}", "[1,"])
def test_invalid_json(frame: str) -> None:
    assert error(frame).code == "INVALID_JSON"


@pytest.mark.parametrize("frame", [
    "[]", "42", '"subscribe"', "null",                       # not an object
    "{}", '{"type": 1}', '{"type": null}',                   # no string type
    '{"type": "subscribe"}',                                 # missing channels
    '{"type": "subscribe", "channels": []}',                 # empty channels
    '{"type": "subscribe", "channels": "positions"}',        # not an array
    '{"type": "unsubscribe", "channels": [1]}',              # not names
    '{"type": "subscribe", "channels": ["positions", null]}',
    '{"type": "subscribe", "channels": ["positions"], "resumeFrom": -1}',
    '{"type": "subscribe", "channels": ["positions"], "resumeFrom": "812"}',
    '{"type": "subscribe", "channels": ["positions"], "resumeFrom": 81.5}',
    '{"type": "subscribe", "channels": ["positions"], "resumeFrom": true}',
])
def test_invalid_message(frame: str) -> None:
    assert error(frame).code == "INVALID_MESSAGE"


def test_binary_frames_are_invalid_messages() -> None:
    assert error(b'{"type": "ping"}').code == "INVALID_MESSAGE"


def test_unknown_message_type() -> None:
    result = error('{"type": "subscribe_all", "channels": ["positions"]}')
    assert result.code == "UNKNOWN_MESSAGE_TYPE"
    assert result.details["validTypes"] == ["subscribe", "unsubscribe", "ping"]


def test_unknown_channel_names_the_first_invalid_one() -> None:
    result = error('{"type": "subscribe", "channels": ["positions", "quotes", "news"]}')
    assert result.code == "SUBSCRIPTION_FAILED"
    assert result.message == "Invalid channel name"
    assert result.details == {"channel": "quotes", "validChannels": VALID}


def test_unknown_channel_on_unsubscribe_too() -> None:
    result = error('{"type": "unsubscribe", "channels": ["Positions"]}')
    assert result.code == "SUBSCRIPTION_FAILED"
    assert result.details == {"channel": "Positions", "validChannels": VALID}


def test_echoed_client_text_is_bounded() -> None:
    result = error(ujson.dumps({"type": "subscribe", "channels": ["x" * 10_000]}))
    assert len(result.details["channel"]) <= 64
    result = error(ujson.dumps({"type": "y" * 10_000}))
    assert len(result.details["type"]) <= 64


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    result = parse("[" * 100_000 + "]" * 100_000)
    assert isinstance(result, ClientError)


def test_ordered_lists_channels_canonically() -> None:
    assert ordered(frozenset({"trades", "positions", "account"})) == ["positions", "account", "trades"]
    assert ordered(frozenset()) == []
