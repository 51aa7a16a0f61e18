"""Every message shape of the API document and every client error code of PROTOCOL.md,
over a real socket."""

import re

from tests.builders import account, order, position, trade

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_envelope(msg, user_id, data_message):
    assert ISO_MS.match(msg["timestamp"]), msg
    assert msg["userId"] == user_id
    assert ("seq" in msg) is data_message, msg
    assert isinstance(msg["data"], dict)


async def test_connected_info_comes_first(make_server):
    server = await make_server()
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie, expect_connected=False)
    msg = await client.expect("info", "CONNECTED")
    assert_envelope(msg, user.user_id, data_message=False)
    details = msg["data"]["details"]
    assert details["availableChannels"] == ["positions", "orders", "account", "trades"]
    assert details["batchWindowMs"] == 1000
    assert details["limits"]["connectionsPerUser"] == 5
    assert details["connectionId"]


async def test_subscribe_unsubscribe_ping_replies(make_server):
    server = await make_server()
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    info = await client.subscribe("trades", "positions")
    assert info["type"] == "info"  # confirmations are never type "error"
    assert info["data"]["details"]["channels"] == ["positions", "trades"]
    snap = await client.expect("snapshot")
    assert set(snap["data"]) == {"positions", "trades"}
    await client.send({"type": "unsubscribe", "channels": ["trades"]})
    msg = await client.expect("info", "UNSUBSCRIBED")
    assert msg["data"]["details"]["channels"] == ["positions"]
    await client.send({"type": "ping"})
    pong = await client.expect("pong")
    assert_envelope(pong, user.user_id, data_message=False)
    assert pong["data"] == {}


async def test_event_payloads_are_exactly_the_api_document(make_server):
    server = await make_server(streaming__immediate_channels=("positions", "orders", "account", "trades"))
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.subscribe("positions", "orders", "account", "trades")
    await client.expect("snapshot")
    uid = user.user_id

    server.publish(position(uid))
    msg = await client.expect("position_update")
    assert_envelope(msg, uid, data_message=True)
    assert msg["data"] == {
        "symbol": "AAPL", "quantity": "100", "currentPrice": "175.50", "entryPrice": "170.25",
        "unrealizedPnl": "525.00", "unrealizedPnlPercent": "3.08", "marketValue": "17550.00",
        "side": "long", "strategyId": "strategy-1", "openedAt": "2026-01-05T15:00:00.000Z",
    }

    server.publish(order(uid, status="filled", filled="50", avg="245.75"))
    msg = await client.expect("order_update")
    assert msg["data"] == {
        "orderId": "order-1", "brokerOrderId": "broker-order-1", "symbol": "TSLA", "side": "buy",
        "type": "limit", "status": "filled", "qty": "50", "filledQty": "50", "filledAvgPrice": "245.75",
        "limitPrice": "246.00", "stopPrice": None, "submittedAt": "2026-01-05T15:00:00.000Z",
        "filledAt": "2026-01-05T15:00:00.000Z",
    }

    server.publish(account(uid))
    msg = await client.expect("account_update")
    assert msg["data"] == {
        "equity": "104308.75", "buyingPower": "208617.50", "cash": "50000.00",
        "portfolioValue": "104308.75", "dayPnl": "1234.56", "dayPnlPercent": "1.20",
        "timestamp": "2026-01-05T15:00:00.000Z",
    }

    server.publish(trade(uid))
    msg = await client.expect("trade_executed")
    assert msg["data"] == {
        "tradeId": "trade-1", "symbol": "NVDA", "side": "sell", "quantity": "25", "price": "520.50",
        "pnl": "1250.00", "executedAt": "2026-01-05T15:00:00.000Z", "strategyId": "strategy-1",
    }
    assert msg["seq"] == 4


async def test_closed_position_is_sent_with_quantity_zero(make_server):
    server = await make_server(streaming__batch_window_ms=60_000)
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.subscribe("positions")
    await client.expect("snapshot")
    server.publish(position(user.user_id, qty="0"))
    server.service.flush()
    msg = await client.expect("position_update")
    assert msg["data"]["quantity"] == "0"


ERRORS = [
    ("{not json", "INVALID_JSON", None),
    ('["subscribe"]', "INVALID_MESSAGE", None),
    ('{"channels": ["orders"]}', "INVALID_MESSAGE", None),
    ('{"type": "subscribe"}', "INVALID_MESSAGE", None),
    ('{"type": "subscribe", "channels": []}', "INVALID_MESSAGE", None),
    ('{"type": "subscribe", "channels": "orders"}', "INVALID_MESSAGE", None),
    ('{"type": "subscribe", "channels": ["orders"], "resumeFrom": "12"}', "INVALID_MESSAGE", None),
    ('{"type": "subscribe", "channels": ["orders"], "resumeFrom": -1}', "INVALID_MESSAGE", None),
    ('{"type": "hello"}', "UNKNOWN_MESSAGE_TYPE", None),
    ('{"type": "subscribe", "channels": ["orders", "invalid_channel"]}', "SUBSCRIPTION_FAILED",
     {"channel": "invalid_channel", "validChannels": ["positions", "orders", "account", "trades"]}),
    (b'\x00\x01binary', "INVALID_MESSAGE", None),
]


async def test_every_error_code_and_the_connection_stays_open(make_server):
    server = await make_server()
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    for frame, code, details in ERRORS:
        await client.send(frame)
        msg = await client.expect("error", code)
        assert_envelope(msg, user.user_id, data_message=False)
        assert msg["data"]["message"]
        if details is not None:
            assert msg["data"]["details"] == details
    # An invalid subscribe changed nothing: still subscribed to nothing.
    await client.send({"type": "unsubscribe", "channels": ["orders"]})
    msg = await client.expect("info", "UNSUBSCRIBED")
    assert msg["data"]["details"]["channels"] == []
    await client.assert_nothing_pending()


async def test_invalid_channel_message_text(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.send({"type": "subscribe", "channels": ["nope"]})
    msg = await client.expect("error", "SUBSCRIPTION_FAILED")
    assert msg["data"]["message"] == "Invalid channel name"


async def test_subscribe_sent_in_the_same_tick_as_open_is_answered(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie, expect_connected=False)
    # Sent before reading anything: the server may still be checking the session.
    await client.send({"type": "subscribe", "channels": ["orders"]})
    await client.send({"type": "ping"})
    await client.expect("info", "CONNECTED")
    await client.expect("info", "SUBSCRIBED")
    await client.expect("snapshot")
    await client.expect("pong")
