"""Snapshot and resume over a real socket (PROTOCOL.md, Snapshot and Recovery).

The batch window is set far longer than any test, so nothing leaves a window unless an immediate
channel (orders, trades) flushes it or the test calls ``service.flush()`` itself.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from portfolio_ws.core import wire
from tests.builders import T0, account, order, position, trade
from tests.harness import Client, FakeClock

LONG_WINDOW = 600_000  # ms: the PeriodicCallback never fires during a test
YESTERDAY = T0 - timedelta(days=1)
DATA_TYPES = {"position_update", "order_update", "account_update", "trade_executed", "batch", "snapshot"}


class SeqWatch:
    """Every message a client reads, checking that ``seq`` never goes down on the connection."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.last = 0

    async def expect(self, type_: str, code: str | None = None) -> dict[str, Any]:
        msg = await self.client.expect(type_, code)
        if msg["type"] in DATA_TYPES:
            assert msg["seq"] >= self.last, f"seq went down from {self.last}: {msg}"
            self.last = msg["seq"]
        else:
            assert "seq" not in msg, msg
        return msg


async def connect(server: Any, cookie: str) -> tuple[Client, Any]:
    """A connected client and its server-side handler (whose ``closed_future`` says the server saw it go)."""
    before = set(server.service.sockets)
    client = await server.connect(cookie)
    [conn_id] = set(server.service.sockets) - before
    return client, server.service.sockets[conn_id]


async def disconnect(client: Client, handler: Any) -> None:
    client.close()
    await handler.closed_future


def payloads(*events: Any) -> list[dict[str, Any]]:
    return [wire.payload(e) for e in events]


# ---- snapshot ------------------------------------------------------------------------------
async def test_snapshot_holds_the_current_state_of_the_added_channels(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    stale_fill = dataclasses.replace(order(uid, "order-old", "filled", filled="50", avg="245.10"),
                                     submitted_at=YESTERDAY, filled_at=YESTERDAY)
    open_since_yesterday = dataclasses.replace(order(uid, "order-gtc", "accepted"), submitted_at=YESTERDAY)
    old_trade = dataclasses.replace(trade(uid, "trade-old"), executed_at=YESTERDAY)
    events: list[Any] = [
        stale_fill, open_since_yesterday, old_trade,
        position(uid, "AAPL", "100", "175.50"),
        position(uid, "TSLA", "5", "240.00"),
        position(uid, "MSFT", "10", "410.00"),
        position(uid, "TSLA", "0", "241.00"),          # closed: not in the snapshot
        position(uid, "AAPL", "120", "176.00"),        # the latest AAPL
        order(uid, "order-1", "new"),
        order(uid, "order-2", "new", symbol="NVDA"),
        order(uid, "order-2", "filled", symbol="NVDA", filled="50", avg="520.50"),  # closed today: kept
        order(uid, "order-3", "canceled", symbol="AMD"),                            # closed today: kept
        account(uid, "100000.00"),
        account(uid, "104308.75"),
    ]
    todays_trades = [dataclasses.replace(trade(uid, f"trade-{i:03d}", price=f"{500 + i}.25"),
                                         executed_at=T0 + timedelta(seconds=i)) for i in range(105)]
    events += todays_trades
    for event in events:  # no connection yet: nothing is sent, the state is kept
        server.publish(event)

    client = await server.connect(cookie)
    subscribed = await client.subscribe("trades", "account", "orders", "positions")
    assert subscribed["data"]["details"]["channels"] == ["positions", "orders", "account", "trades"]
    snap = await client.expect("snapshot")
    assert snap["seq"] == len(events)
    assert snap["userId"] == uid
    data = snap["data"]
    assert set(data) == {"positions", "orders", "account", "trades"}
    by_symbol = {p["symbol"]: p for p in data["positions"]}
    assert set(by_symbol) == {"AAPL", "MSFT"}
    assert by_symbol["AAPL"] == wire.payload(events[7]) and by_symbol["AAPL"]["quantity"] == "120"
    assert by_symbol["MSFT"] == wire.payload(events[5])
    by_order = {o["orderId"]: o for o in data["orders"]}
    assert set(by_order) == {"order-gtc", "order-1", "order-2", "order-3"}  # not yesterday's fill
    assert by_order["order-2"]["status"] == "filled" and by_order["order-2"]["filledAvgPrice"] == "520.50"
    assert by_order["order-gtc"] == wire.payload(open_since_yesterday)
    assert data["account"] == wire.payload(events[13]) and data["account"]["equity"] == "104308.75"
    assert data["trades"] == payloads(*todays_trades[-100:])  # today's, newest last, at most 100
    await client.assert_nothing_pending()


async def test_a_later_subscribe_sends_a_snapshot_of_just_the_added_channel(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    server.publish(position(uid, "AAPL"))
    server.publish(account(uid))
    server.publish(order(uid, "order-1"))

    client = await server.connect(cookie)
    watch = SeqWatch(client)
    await client.subscribe("positions")
    first = await watch.expect("snapshot")
    assert first["seq"] == 3 and first["data"] == {"positions": payloads(position(uid, "AAPL"))}

    server.publish(account(uid, "105000.00"))  # seq 4, not subscribed
    reply = await client.subscribe("account", "positions")
    assert reply["data"]["details"]["channels"] == ["positions", "account"]
    second = await watch.expect("snapshot")
    assert second["seq"] == 4
    assert second["data"] == {"account": wire.payload(account(uid, "105000.00"))}

    reply = await client.subscribe("account")  # adds nothing: no snapshot
    assert reply["data"]["details"]["channels"] == ["positions", "account"]
    await client.assert_nothing_pending()


async def test_pending_window_is_sent_before_a_snapshot_so_seq_never_goes_down(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    client = await server.connect(cookie)
    watch = SeqWatch(client)
    await client.subscribe("positions")
    assert (await watch.expect("snapshot"))["seq"] == 0

    server.publish(position(uid, "AAPL", "101"))  # seq 1, waits in the window
    server.publish(account(uid))                  # seq 2, not subscribed yet
    await client.send({"type": "subscribe", "channels": ["account"]})
    pending = await watch.expect("position_update")  # the window goes out first
    assert pending["seq"] == 1 and pending["data"]["quantity"] == "101"
    await watch.expect("info", "SUBSCRIBED")
    snap = await watch.expect("snapshot")
    assert snap["seq"] == 2 and snap["data"] == {"account": wire.payload(account(uid))}

    server.publish(position(uid, "AAPL", "102"))  # seq 3
    server.service.flush()
    assert (await watch.expect("position_update"))["seq"] == 3
    await client.assert_nothing_pending()


# ---- resume --------------------------------------------------------------------------------
async def test_resume_replays_exactly_the_missed_events_as_one_window(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    client, handler = await connect(server, cookie)
    await client.subscribe("positions", "orders", "trades")
    await client.expect("snapshot")
    server.publish(position(uid, "AAPL", "100"))  # seq 1, pending
    server.publish(order(uid, "order-1", "new"))  # seq 2, immediate: flushes both
    live = await client.expect("batch")
    assert live["seq"] == 2
    last_processed = live["seq"]
    await disconnect(client, handler)

    missed = [
        position(uid, "AAPL", "101", "176.00"),                            # 3
        account(uid, "99000.00"),                                          # 4: not subscribed
        position(uid, "MSFT", "10", "410.00"),                             # 5
        trade(uid, "trade-1", "NVDA"),                                     # 6
        position(uid, "AAPL", "102", "177.00"),                            # 7: latest AAPL
        order(uid, "order-1", "filled", filled="50", avg="245.75"),        # 8
        trade(uid, "trade-2", "AMD", price="150.00"),                      # 9
        account(uid, "99500.00"),                                          # 10: not subscribed
    ]
    for event in missed:
        server.publish(event)

    again = await server.connect(cookie)
    watch = SeqWatch(again)
    reply = await again.subscribe("positions", "orders", "trades", resume_from=last_processed)
    assert reply["data"]["details"]["channels"] == ["positions", "orders", "trades"]
    replay = await watch.expect("batch")
    assert replay["seq"] == 9  # the newest event it reflects
    assert replay["data"] == {
        "positions": payloads(missed[2], missed[4]),  # MSFT, then AAPL at its latest
        "orders": payloads(missed[5]),
        "trades": payloads(missed[3], missed[6]),     # every trade, in order
    }
    resumed = await watch.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": True, "from": 2, "to": 10}
    await again.assert_nothing_pending()  # no snapshot after a recovered resume

    server.publish(order(uid, "order-2", "new"))  # and the stream goes on from there
    assert (await watch.expect("order_update"))["seq"] == 11


async def test_resume_with_one_missed_event_sends_it_as_its_own_type(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    server.publish(position(uid, "AAPL", "100"))   # 1
    server.publish(position(uid, "AAPL", "110"))   # 2
    server.publish(account(uid))                   # 3: not subscribed
    client = await server.connect(cookie)
    await client.subscribe("positions", resume_from=1)
    msg = await client.expect("position_update")
    assert msg["seq"] == 2 and msg["data"] == wire.payload(position(uid, "AAPL", "110"))
    resumed = await client.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": True, "from": 1, "to": 3}
    await client.assert_nothing_pending()


async def test_resume_with_nothing_missed_on_the_channels_sends_only_resumed(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    server.publish(position(uid))  # 1
    server.publish(account(uid))   # 2
    client = await server.connect(cookie)
    await client.subscribe("positions", resume_from=1)  # only an account event was missed
    resumed = await client.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": True, "from": 1, "to": 2}
    await client.assert_nothing_pending()

    other = await server.connect(cookie)
    await other.subscribe("account", resume_from=2)  # up to date
    resumed = await other.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": True, "from": 2, "to": 2}
    await other.assert_nothing_pending()


async def test_resume_after_the_events_are_gone_sends_a_fresh_snapshot(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW, recovery__max_events=3)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    for qty in ("100", "101", "102", "103", "104"):  # seq 1..5; only 3..5 are held
        server.publish(position(uid, "AAPL", qty))
    server.publish(order(uid, "order-1"))            # seq 6; 4..6 held
    client = await server.connect(cookie)
    watch = SeqWatch(client)
    await client.subscribe("positions", "orders", resume_from=2)
    resumed = await watch.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": False, "from": 2, "to": 6}
    snap = await watch.expect("snapshot")
    assert snap["seq"] == 6
    assert snap["data"] == {"positions": payloads(position(uid, "AAPL", "104")),
                            "orders": payloads(order(uid, "order-1"))}
    await client.assert_nothing_pending()

    held = await server.connect(cookie)  # from 3 on, everything is still held
    await held.subscribe("positions", resume_from=3)
    assert (await held.expect("position_update"))["data"]["quantity"] == "104"
    assert (await held.expect("info", "RESUMED"))["data"]["details"]["recovered"] is True


async def test_resume_after_the_events_are_too_old_sends_a_fresh_snapshot(make_server):
    clock = FakeClock(T0.timestamp())
    server = await make_server(clock=clock, streaming__batch_window_ms=LONG_WINDOW,
                               recovery__max_age_seconds=60)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    server.publish(position(uid, "AAPL", "100"))  # 1
    server.publish(position(uid, "AAPL", "101"))  # 2
    clock.now += 61
    client = await server.connect(cookie)
    await client.subscribe("positions", resume_from=1)
    resumed = await client.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": False, "from": 1, "to": 2}
    snap = await client.expect("snapshot")
    assert snap["seq"] == 2 and snap["data"] == {"positions": payloads(position(uid, "AAPL", "101"))}


async def test_resume_from_beyond_the_current_offset_is_not_recovered(make_server):
    """The server restarted: offsets start again from 0, so the client's 50 is from another life."""
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    server.publish(position(uid))   # 1
    server.publish(account(uid))    # 2
    client = await server.connect(cookie)
    await client.subscribe("positions", "account", resume_from=50)
    resumed = await client.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": False, "from": 50, "to": 2}
    snap = await client.expect("snapshot")
    assert snap["seq"] == 2
    assert snap["data"] == {"positions": payloads(position(uid)), "account": wire.payload(account(uid))}
    await client.assert_nothing_pending()


async def test_seq_never_goes_down_across_subscribes_resumes_and_batches(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    uid = user.user_id
    client = await server.connect(cookie)
    watch = SeqWatch(client)
    server.publish(position(uid, "AAPL", "1"))                        # 1
    await client.subscribe("positions")
    assert (await watch.expect("snapshot"))["seq"] == 1
    server.publish(position(uid, "AAPL", "2"))                        # 2, pending
    server.publish(trade(uid, "trade-1"))                             # 3, not subscribed: flushes AAPL
    assert (await watch.expect("position_update"))["seq"] == 2
    server.publish(position(uid, "MSFT", "3"))                        # 4, pending
    await client.send({"type": "subscribe", "channels": ["trades"]})  # flush, then snapshot of trades
    assert (await watch.expect("position_update"))["seq"] == 4
    await watch.expect("info", "SUBSCRIBED")
    snap = await watch.expect("snapshot")
    assert snap["seq"] == 4 and [t["tradeId"] for t in snap["data"]["trades"]] == ["trade-1"]

    # A resume on the same connection from an old offset: nothing it already has comes again.
    await client.subscribe("positions", resume_from=1)
    resumed = await watch.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": True, "from": 1, "to": 4}
    # A resume that can't be recovered: the snapshot carries the current offset, not an older one.
    server.publish(position(uid, "AAPL", "5"))                        # 5, pending
    await client.send({"type": "subscribe", "channels": ["positions"], "resumeFrom": 99})
    assert (await watch.expect("position_update"))["seq"] == 5
    await watch.expect("info", "SUBSCRIBED")
    assert (await watch.expect("info", "RESUMED"))["data"]["details"]["recovered"] is False
    assert (await watch.expect("snapshot"))["seq"] == 5
    server.publish(trade(uid, "trade-2"))                             # 6
    assert (await watch.expect("trade_executed"))["seq"] == 6
    await client.assert_nothing_pending()
