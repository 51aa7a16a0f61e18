"""The engine end to end: events and client frames in, parsed frames and closes out.

Every test drives ``StreamCore`` through its input verbs and reads ``data_to_send()`` as a client
would: JSON frames per connection, close codes and reasons."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import ujson

from portfolio_ws.core.output import Closing, Outgoing
from tests.builders import NOW, account, later, order, position, trade
from tests.unit.portfolio_ws.core.driver import CONTROL_TYPES, DATA_TYPES, Sent, connect, drain, make_core, publish, send
from tests.wiretime import ISO_MS

ALL = ["positions", "orders", "account", "trades"]


def subscribe(core: Any, conn: int, *channels: str, resume_from: int | None = None,
              now: float = NOW) -> Sent:
    message: dict[str, Any] = {"type": "subscribe", "channels": list(channels)}
    if resume_from is not None:
        message["resumeFrom"] = resume_from
    return send(core, conn, message, now)


def check_envelope(msg: dict[str, Any], user: str) -> None:
    assert msg["userId"] == user
    assert ISO_MS.match(msg["timestamp"])
    if msg["type"] in DATA_TYPES:
        assert isinstance(msg["seq"], int) and set(msg) == {"type", "timestamp", "userId", "seq", "data"}
    else:
        assert msg["type"] in CONTROL_TYPES and "seq" not in msg
        assert set(msg) == {"type", "timestamp", "userId", "data"}


# ---- connect -------------------------------------------------------------------------------------
def test_first_message_is_connected_info() -> None:
    core = make_core(streaming={"batch_window_ms": 250})
    conn = core.open("u1", "s1", NOW)
    sent = drain(core)
    [msg] = sent.to(conn)
    check_envelope(msg, "u1")
    assert msg["type"] == "info" and msg["data"]["code"] == "CONNECTED"
    details = msg["data"]["details"]
    assert set(details) >= {"connectionId", "availableChannels", "batchWindowMs", "limits"}
    assert details["availableChannels"] == ALL
    assert details["batchWindowMs"] == 250
    assert details["limits"]["connectionsPerUser"] == 5 and details["limits"]["totalConnections"] == 100


def test_connection_ids_are_distinct() -> None:
    core = make_core()
    a, b = core.open("u1", "s1", NOW), core.open("u1", "s1", NOW)
    sent = drain(core)
    assert sent.to(a)[0]["data"]["details"]["connectionId"] != sent.to(b)[0]["data"]["details"]["connectionId"]


def test_no_authentication_is_closed_1008_with_nothing_sent_first() -> None:
    core = make_core()
    publish(core, position("u1"))
    conn = core.open(None, None, NOW)
    outputs = core.data_to_send()
    assert outputs == [Closing(conn, outputs[0].close)]  # type: ignore[union-attr]
    close = outputs[0].close  # type: ignore[union-attr]
    assert (close.code, close.reason) == (1008, "Authentication required")
    core.receive_frame(conn, '{"type": "ping"}', NOW)
    assert core.data_to_send() == []


def test_a_refusal_decided_elsewhere_closes_with_it_and_admits_nothing() -> None:
    from portfolio_ws import constants as c

    core = make_core()
    conn = core.open("u1", "s1", NOW, c.user_limit_close(5))  # cluster-wide: the user is at the limit
    outputs = core.data_to_send()
    assert outputs[1:] == [Closing(conn, c.user_limit_close(5))]
    assert isinstance(outputs[0], Outgoing) and outputs[0].connections == (conn,)
    assert ujson.loads(outputs[0].frame)["data"] == {  # the machine-readable cause, then the close
        "code": "CONNECTION_LIMIT", "message": "Maximum connections exceeded (5 per user)",
        "details": {"closeCode": 1008}}
    assert conn not in core.hub.connections and core.stats.rejected_connections == 1


def test_streaming_disabled_is_closed_1013() -> None:
    core = make_core(streaming={"enabled": False})
    conn = core.open("u1", "s1", NOW)
    sent = drain(core)
    assert (sent.closes[conn].code, sent.closes[conn].reason) == (1013, "Realtime streaming disabled")
    assert [m["data"]["code"] for m in sent.to(conn)] == ["STREAMING_DISABLED"]
    core.set_enabled(True)
    conn = core.open("u1", "s1", NOW)
    assert drain(core).types(conn) == ["info"]


def test_sixth_connection_of_a_user_is_closed_1008() -> None:
    core = make_core()
    conns = [connect(core, "u1") for _ in range(5)]
    sixth = core.open("u1", "s1", NOW)
    sent = drain(core)
    assert [(m["type"], m["data"]["code"]) for m in sent.to(sixth)] == [("error", "CONNECTION_LIMIT")]
    assert (sent.closes[sixth].code, sent.closes[sixth].reason) == \
        (1008, "Maximum connections exceeded (5 per user)")
    connect(core, "u2")  # other users are not affected
    core.closed(conns[0], NOW)
    connect(core, "u1")  # a freed slot can be used again


def test_per_user_limit_reason_follows_the_setting() -> None:
    core = make_core(limits={"connections_per_user": 2})
    connect(core, "u1"), connect(core, "u1")
    conn = core.open("u1", "s1", NOW)
    assert drain(core).closes[conn].reason == "Maximum connections exceeded (2 per user)"


def test_101st_connection_is_closed_1013() -> None:
    core = make_core()
    for user in range(20):
        for _ in range(5):
            connect(core, f"user-{user}")
    extra = core.open("someone-else", "s", NOW)
    sent = drain(core)
    assert [(m["type"], m["data"]["code"]) for m in sent.to(extra)] == [("error", "SERVER_CAPACITY")]
    assert (sent.closes[extra].code, sent.closes[extra].reason) == (1013, "Server capacity reached - try again later")
    assert len(core.hub.connections) == 100


# ---- client messages -------------------------------------------------------------------------------
def test_subscribe_confirms_the_full_set_then_snapshots_only_the_added_channels() -> None:
    core = make_core()
    publish(core, position("u1"), account("u1"))
    conn = connect(core, "u1")
    sent = subscribe(core, conn, "positions")
    [info, snap] = sent.to(conn)
    check_envelope(info, "u1")
    assert info["type"] == "info" and info["data"]["code"] == "SUBSCRIBED"
    assert info["data"]["details"]["channels"] == ["positions"]
    check_envelope(snap, "u1")
    assert snap["type"] == "snapshot" and snap["seq"] == 2
    assert list(snap["data"]) == ["positions"] and snap["data"]["positions"][0]["symbol"] == "AAPL"

    sent = subscribe(core, conn, "trades", "account", "positions")
    [info, snap] = sent.to(conn)
    assert info["data"]["details"]["channels"] == ["positions", "account", "trades"]
    assert snap["type"] == "snapshot" and list(snap["data"]) == ["account", "trades"]
    assert snap["data"]["account"]["equity"] == "104308.75" and snap["data"]["trades"] == []


def test_subscribing_again_to_the_same_channels_sends_no_snapshot() -> None:
    core = make_core()
    conn = connect(core, "u1", "orders")
    sent = subscribe(core, conn, "orders")
    assert sent.types(conn) == ["info"]
    assert sent.to(conn)[0]["data"]["details"]["channels"] == ["orders"]


def test_unsubscribe_confirms_the_remaining_set_and_stops_the_channel() -> None:
    core = make_core()
    conn = connect(core, "u1", "positions", "orders")
    sent = send(core, conn, {"type": "unsubscribe", "channels": ["positions", "trades"]})
    [info] = sent.to(conn)
    check_envelope(info, "u1")
    assert info["type"] == "info" and info["data"]["code"] == "UNSUBSCRIBED"
    assert info["data"]["details"]["channels"] == ["orders"]
    publish(core, position("u1"))
    core.flush(NOW)
    assert drain(core).to(conn) == []


def test_ping_gets_pong_at_once_whatever_is_pending() -> None:
    core = make_core()
    conn = connect(core, "u1", "positions")
    publish(core, position("u1"))
    sent = send(core, conn, {"type": "ping"})
    [pong] = sent.to(conn)
    check_envelope(pong, "u1")
    assert pong["type"] == "pong" and pong["data"] == {}


@pytest.mark.parametrize("frame, code", [
    ("{not json", "INVALID_JSON"),
    ('{"type": "subscribe"}', "INVALID_MESSAGE"),
    ('{"type": "subscribe", "channels": []}', "INVALID_MESSAGE"),
    ('["subscribe"]', "INVALID_MESSAGE"),
    ('{"type": "hello"}', "UNKNOWN_MESSAGE_TYPE"),
    ('{"type": "subscribe", "channels": ["positions", "quotes"]}', "SUBSCRIPTION_FAILED"),
])
def test_client_errors_keep_the_connection_open(frame: str, code: str) -> None:
    core = make_core()
    conn = connect(core, "u1", "orders")
    sent = send(core, conn, frame)
    assert not sent.closes
    [err] = sent.to(conn)
    check_envelope(err, "u1")
    assert err["type"] == "error" and err["data"]["code"] == code
    assert isinstance(err["data"]["message"], str) and err["data"]["message"]
    assert isinstance(err["data"]["details"], dict)
    assert send(core, conn, {"type": "ping"}).types(conn) == ["pong"]  # still open, still served
    publish(core, order("u1"))
    assert drain(core).types(conn) == ["order_update"]


def test_subscription_failed_changes_nothing() -> None:
    core = make_core()
    conn = connect(core, "u1", "orders")
    sent = send(core, conn, {"type": "subscribe", "channels": ["positions", "quotes"]})
    [err] = sent.to(conn)
    assert err["data"] == {"code": "SUBSCRIPTION_FAILED", "message": "Invalid channel name",
                           "details": {"channel": "quotes", "validChannels": ALL}}
    assert send(core, conn, {"type": "unsubscribe", "channels": ["orders", "nope"]}).to(conn)[0]["data"]["code"] \
        == "SUBSCRIPTION_FAILED"
    publish(core, position("u1"), order("u1"))  # still on orders only, and still on orders
    sent = drain(core)
    assert sent.types(conn) == ["order_update"]


def test_binary_frame_is_an_invalid_message() -> None:
    core = make_core()
    conn = connect(core, "u1")
    sent = send(core, conn, b"\x00\x01")
    assert sent.to(conn)[0]["data"]["code"] == "INVALID_MESSAGE" and not sent.closes


def test_confirmations_are_info_never_error() -> None:
    core = make_core()
    conn = connect(core, "u1")
    replies = (subscribe(core, conn, "positions").to(conn)
               + send(core, conn, {"type": "unsubscribe", "channels": ["positions"]}).to(conn)
               + subscribe(core, conn, "orders", resume_from=0).to(conn))
    codes = {m["data"]["code"]: m["type"] for m in replies if m["type"] in ("info", "error")}
    assert codes == {"SUBSCRIBED": "info", "UNSUBSCRIBED": "info", "RESUMED": "info"}


# ---- data: batching ----------------------------------------------------------------------------------
def test_events_wait_for_the_window_then_one_goes_as_its_own_type() -> None:
    core = make_core()
    conn = connect(core, "u1", "positions")
    [seq] = publish(core, position("u1"))
    assert drain(core).frames == []
    core.flush(NOW + 1)
    [msg] = drain(core).to(conn)
    check_envelope(msg, "u1")
    assert msg["type"] == "position_update" and msg["seq"] == seq == 1
    assert msg["data"]["symbol"] == "AAPL" and msg["data"]["quantity"] == "100"
    assert msg["timestamp"] == "2026-01-05T15:00:01.000Z"  # time of sending
    core.flush(NOW + 2)
    assert drain(core).frames == []  # nothing pending, nothing sent


def test_window_coalesces_positions_and_account_into_one_batch() -> None:
    core = make_core()
    conn = connect(core, "u1", *ALL)
    publish(core, position("u1", "AAPL", price="170.00"), position("u1", "MSFT"), account("u1", "1.00"),
            position("u1", "AAPL", price="171.00"), account("u1", "2.00"))
    core.flush(NOW)
    [msg] = drain(core).to(conn)
    assert msg["type"] == "batch" and msg["seq"] == 5
    assert list(msg["data"]) == ["positions", "account"]   # only non-empty keys
    assert {p["symbol"]: p["currentPrice"] for p in msg["data"]["positions"]} == \
        {"AAPL": "171.00", "MSFT": "175.50"}
    assert msg["data"]["account"]["equity"] == "2.00"


def test_orders_coalesce_latest_per_order_id() -> None:
    core = make_core(streaming={"immediate_channels": ()})
    conn = connect(core, "u1", "orders")
    publish(core, order("u1", "a", "new"), order("u1", "b", "new"), order("u1", "a", "filled", filled="50"))
    core.flush(NOW)
    [msg] = drain(core).to(conn)
    assert msg["type"] == "batch"
    assert {o["orderId"]: o["status"] for o in msg["data"]["orders"]} == {"a": "filled", "b": "new"}


def test_trades_are_all_sent_in_order_never_dropped() -> None:
    core = make_core(streaming={"immediate_channels": ()})
    conn = connect(core, "u1", "trades")
    ids = [f"t{i}" for i in range(250)]
    publish(core, *(trade("u1", t) for t in ids))
    core.flush(NOW)
    [msg] = drain(core).to(conn)
    assert [t["tradeId"] for t in msg["data"]["trades"]] == ids and msg["seq"] == 250


def test_immediate_channel_flushes_the_pending_window_at_once() -> None:
    core = make_core()  # immediate: orders, trades
    conn = connect(core, "u1", *ALL)
    publish(core, position("u1"), account("u1"))
    assert drain(core).frames == []
    publish(core, trade("u1"))
    [msg] = drain(core).to(conn)  # no flush tick needed
    assert msg["type"] == "batch" and msg["seq"] == 3
    assert list(msg["data"]) == ["positions", "account", "trades"]
    core.flush(NOW)
    assert drain(core).frames == []  # nothing left over


def test_traced_messages_carry_when_their_oldest_and_newest_events_arrived() -> None:
    # streaming.trace_event_time (load tests): a message's batched latency is its oldest event's
    # wait; an order or trade flushes at once, so its latency is the newest event's.
    core = make_core(streaming={"trace_event_time": True})
    conn = connect(core, "u1", *ALL)
    publish(core, position("u1"), now=NOW + 0.1)
    publish(core, account("u1"), now=NOW + 0.4)
    publish(core, order("u1"), now=NOW + 0.9)
    [msg] = drain(core).to(conn)
    assert msg["type"] == "batch"
    assert msg["eventAt"] == pytest.approx(NOW + 0.1) and msg["lastEventAt"] == pytest.approx(NOW + 0.9)
    untraced = make_core()
    conn = connect(untraced, "u1", *ALL)
    publish(untraced, order("u1"))
    [msg] = drain(untraced).to(conn)
    assert "eventAt" not in msg and "lastEventAt" not in msg


def test_an_immediate_event_alone_is_its_own_type() -> None:
    core = make_core()
    conn = connect(core, "u1", "orders")
    publish(core, order("u1"))
    [msg] = drain(core).to(conn)
    assert msg["type"] == "order_update" and msg["data"]["status"] == "new"


def test_empty_immediate_list_makes_everything_wait() -> None:
    core = make_core(streaming={"immediate_channels": ()})
    conn = connect(core, "u1", *ALL)
    publish(core, order("u1"), trade("u1"))
    assert drain(core).frames == []
    core.flush(NOW)
    assert drain(core).types(conn) == ["batch"]


def test_a_window_goes_when_the_wheel_passes_its_users_slot_once_a_window() -> None:
    core = make_core()  # 1000 ms window, 50 ms ticks: a wheel of 20 slots
    assert (core.slots, core.slot_seconds) == (20, 0.05)
    conn = connect(core, "u1", *ALL)
    core.flush_due(NOW)
    goes = core.flush_time("u1", NOW)
    assert NOW < goes <= NOW + 1.0
    publish(core, position("u1"), now=NOW)
    publish(core, account("u1"), now=goes - 0.01)  # joins the same window
    assert core.flush_due(goes - 0.01) == 0 and drain(core).frames == []
    assert core.flush_due(goes) == 1
    assert drain(core).types(conn) == ["batch"]
    publish(core, position("u1", price="1.00"), now=goes + 0.01)  # waits for the next turn
    assert core.flush_time("u1", goes + 0.01) == pytest.approx(goes + 1.0)
    assert core.flush_due(goes + 0.99) == 0
    assert core.flush_due(goes + 1.0) == 1 and drain(core).types(conn) == ["position_update"]


def test_users_slots_spread_their_flushes_over_the_window() -> None:
    core = make_core()
    users = [f"user-{n}" for n in range(200)]
    times = {round((core.flush_time(u, NOW) - NOW) / core.slot_seconds) for u in users}
    assert len(times) == core.slots  # 200 users land in every one of the 20 slots
    assert core.flush_time("user-7", NOW) == make_core().flush_time("user-7", NOW)  # stable


def test_a_late_tick_sends_every_slot_it_passed_once() -> None:
    core = make_core()
    conns = {u: connect(core, u, *ALL) for u in ("u1", "u2", "u3")}
    core.flush_due(NOW)
    for u in conns:
        publish(core, position(u), now=NOW)
    assert core.flush_due(NOW + 5.0) == 3  # the loop stalled for 5 s: everyone goes, once
    sent = drain(core)
    assert [sent.types(c) for c in conns.values()] == [["position_update"]] * 3
    assert core.flush_due(NOW + 5.0) == 0


def test_a_window_pending_after_the_batcher_paused_waits_for_its_own_slot() -> None:
    # The adapter stops ticking while no window is pending (an idle node sleeps); a window that is
    # then new goes when the wheel passes its user's slot, not at the first tick after the pause.
    core = make_core()
    conn = connect(core, "u1", *ALL)
    core.flush_due(NOW)
    assert not core.windows_pending()
    paused = NOW + 5.0                              # no tick for 5 s
    publish(core, position("u1"), now=paused)
    assert core.windows_pending() and not core.wheel_behind(paused)
    goes = core.flush_time("u1", paused)
    before = max(paused, goes - core.slot_seconds / 2)
    assert core.flush_due(before) == 0 and drain(core).frames == []
    assert core.wheel_behind(goes) and core.flush_due(goes) == 1
    assert drain(core).types(conn) == ["position_update"]
    assert not core.windows_pending()


def test_a_window_flushed_early_is_not_sent_again_when_its_slot_comes() -> None:
    core = make_core()
    conn = connect(core, "u1", *ALL)
    core.flush_due(NOW)
    goes = core.flush_time("u1", NOW)
    publish(core, position("u1"), now=NOW)
    publish(core, order("u1"), now=NOW)            # immediate: the window goes now
    assert drain(core).types(conn) == ["batch"]
    assert core.flush_due(goes) == 0 and drain(core).frames == []


def test_each_connection_receives_only_its_channels() -> None:
    core = make_core(streaming={"immediate_channels": ()})
    pos = connect(core, "u1", "positions")
    orders = connect(core, "u1", "orders")
    both = connect(core, "u1", "positions", "orders")
    idle = connect(core, "u1")                 # subscribed to nothing
    acct = connect(core, "u1", "account")      # nothing in the window for it
    publish(core, position("u1"), order("u1"))
    core.flush(NOW)
    sent = drain(core)
    assert sent.types(pos) == ["position_update"]
    assert sent.types(orders) == ["order_update"]
    [batch] = sent.to(both)
    assert batch["type"] == "batch" and list(batch["data"]) == ["positions", "orders"]
    assert sent.to(idle) == [] and sent.to(acct) == []


def test_same_subscription_set_is_serialised_once() -> None:
    core = make_core()
    a = connect(core, "u1", "positions", "orders")
    b = connect(core, "u1", "orders", "positions")
    c = connect(core, "u1", "positions")
    publish(core, position("u1"), position("u1", "MSFT"))
    core.flush(NOW)
    sent = drain(core)
    shared = [o for o in sent.frames if a in o.connections]
    assert len(shared) == 1 and set(shared[0].connections) == {a, b}
    assert sent.to(a) == sent.to(b) and sent.to(c) == sent.to(a)
    assert len(sent.frames) == 2  # one per distinct subscription set


def test_same_set_is_serialised_once_after_a_later_snapshot() -> None:
    # b joins after events on a channel neither receives: its snapshot carries a newer seq than a
    # was ever sent. Their next message is still the same, so it is serialised once.
    core = make_core()
    a = connect(core, "u1", "positions")
    publish(core, order("u1"), order("u1", "o2"))
    b = connect(core, "u1", "positions")
    publish(core, position("u1"))
    core.flush(NOW)
    sent = drain(core)
    assert len(sent.frames) == 1 and set(sent.frames[0].connections) == {a, b}
    assert sent.to(a)[0]["seq"] == 3


def test_users_are_isolated() -> None:
    core = make_core()
    alice = connect(core, "alice", *ALL)
    bob = connect(core, "bob", *ALL)
    publish(core, position("alice"), trade("alice"), account("bob"))
    core.flush(NOW)
    sent = drain(core)
    assert all(m["userId"] == "alice" for m in sent.to(alice))
    assert all(m["userId"] == "bob" for m in sent.to(bob))
    assert sent.types(bob) == ["account_update"] and sent.to(bob)[0]["seq"] == 1  # bob's own offsets
    assert "trades" in sent.to(alice)[0]["data"]
    for frame in sent.frames:  # a frame is only ever addressed to one user's connections
        owners = {core.hub.connections[conn].user_id for conn in frame.connections}
        assert len(owners) == 1


def test_users_without_connections_accumulate_no_window() -> None:
    core = make_core()
    publish(core, *(position("u1", f"S{i}") for i in range(50)))
    assert not core.users["u1"].window
    conn = connect(core, "u1")
    publish(core, position("u1", "LATE"))      # connected but not subscribed: nothing for it
    sent = subscribe(core, conn, "positions")
    [_, snap] = sent.to(conn)
    assert snap["seq"] == 51 and len(snap["data"]["positions"]) == 51
    core.flush(NOW)
    assert drain(core).frames == []            # the snapshot already had it all
    core.closed(conn, NOW)
    publish(core, position("u1"))
    assert not core.users["u1"].window


def test_the_last_connection_leaving_drops_the_pending_window() -> None:
    core = make_core()
    conn = connect(core, "u1", "positions")
    publish(core, position("u1"))
    assert core.users["u1"].window
    core.closed(conn, NOW)
    assert not core.users["u1"].window
    core.flush(NOW)
    assert drain(core).frames == []


# ---- seq -------------------------------------------------------------------------------------------
def seqs(sent: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in sent if m["type"] in DATA_TYPES]


def test_seq_never_goes_down_across_snapshot_flush_and_resubscribe() -> None:
    core = make_core()
    conn = connect(core, "u1", "positions")
    received: list[dict[str, Any]] = []
    publish(core, position("u1"))               # 1, pending
    publish(core, order("u1"))                  # 2, immediate: flushes 1 to conn
    received += drain(core).to(conn)
    publish(core, position("u1", "MSFT"))       # 3, pending
    received += subscribe(core, conn, "orders", "trades").to(conn)  # flushes 3, then snapshot at 3
    publish(core, position("u1"), trade("u1"))  # 4 pending, 5 immediate: one batch
    core.flush(NOW)
    received += drain(core).to(conn)
    received += send(core, conn, {"type": "ping"}).to(conn)
    for msg in received:
        check_envelope(msg, "u1")
    assert [m["type"] for m in received if m["type"] in DATA_TYPES] == \
        ["position_update", "position_update", "snapshot", "batch"]
    assert seqs(received) == [1, 3, 3, 5]


def test_pending_events_are_sent_before_a_snapshot_never_after() -> None:
    core = make_core()
    conn = connect(core, "u1", "positions")
    publish(core, position("u1", "AAPL"))
    sent = subscribe(core, conn, "account")
    assert sent.types(conn) == ["position_update", "info", "snapshot"]
    assert seqs(sent.to(conn)) == [1, 1]


# ---- recovery ----------------------------------------------------------------------------------------
def test_resume_replays_missed_events_then_resumed_recovered_true() -> None:
    core = make_core(streaming={"immediate_channels": ()})
    conn = connect(core, "u1", "positions", "trades")
    publish(core, position("u1"), trade("u1", "t1"))
    core.flush(NOW)
    last = drain(core).to(conn)[-1]["seq"]
    assert last == 2
    core.closed(conn, NOW + 1)
    publish(core, position("u1", price="180.00"), order("u1"), trade("u1", "t2"), position("u1", price="181.00"),
            trade("u1", "t3"), now=NOW + 2)
    conn = connect(core, "u1", now=NOW + 3)
    sent = subscribe(core, conn, "positions", "trades", resume_from=last, now=NOW + 3)
    [info, replay, resumed] = sent.to(conn)
    assert info["data"]["code"] == "SUBSCRIBED"
    assert replay["type"] == "batch" and replay["seq"] == 7
    assert [p["currentPrice"] for p in replay["data"]["positions"]] == ["181.00"]   # coalesced
    assert [t["tradeId"] for t in replay["data"]["trades"]] == ["t2", "t3"]         # all of them
    assert "orders" not in replay["data"]                                            # not subscribed
    assert resumed["type"] == "info" and resumed["data"]["code"] == "RESUMED"
    assert resumed["data"]["details"] == {"recovered": True, "from": 2, "to": 7}
    publish(core, position("u1"), now=NOW + 4)
    core.flush(NOW + 4)
    assert seqs(drain(core).to(conn)) == [8]


def test_resume_with_nothing_missed() -> None:
    core = make_core()
    publish(core, position("u1"))
    conn = connect(core, "u1")
    sent = subscribe(core, conn, "positions", resume_from=1)
    assert sent.types(conn) == ["info", "info"]
    assert sent.to(conn)[1]["data"]["details"] == {"recovered": True, "from": 1, "to": 1}


def test_resume_with_missed_events_only_on_other_channels() -> None:
    core = make_core()
    publish(core, position("u1"), order("u1"))
    conn = connect(core, "u1")
    sent = subscribe(core, conn, "positions", resume_from=1)
    assert sent.types(conn) == ["info", "info"]
    assert sent.to(conn)[1]["data"]["details"] == {"recovered": True, "from": 1, "to": 2}
    publish(core, position("u1"))
    core.flush(NOW)
    assert seqs(drain(core).to(conn)) == [3]


def _not_recovered(core: Any, conn: int, resume_from: int, now: float = NOW) -> dict[str, Any]:
    sent = subscribe(core, conn, "positions", "account", resume_from=resume_from, now=now)
    [info, resumed, snap] = sent.to(conn)
    assert info["data"]["code"] == "SUBSCRIBED"
    assert resumed["type"] == "info" and resumed["data"]["code"] == "RESUMED"
    assert resumed["data"]["details"]["recovered"] is False
    assert resumed["data"]["details"]["from"] == resume_from
    assert snap["type"] == "snapshot" and list(snap["data"]) == ["positions", "account"]
    return snap


def test_resume_too_far_back_gets_recovered_false_and_a_snapshot() -> None:
    core = make_core(recovery={"max_events": 10})
    publish(core, *(position("u1", price=f"1{i:02d}.00") for i in range(30)), account("u1"))
    conn = connect(core, "u1")
    snap = _not_recovered(core, conn, resume_from=5)
    assert snap["seq"] == 31
    assert snap["data"]["positions"][0]["currentPrice"] == "129.00"
    assert snap["data"]["account"]["equity"] == "104308.75"


def test_resume_after_a_server_restart_gets_recovered_false() -> None:
    core = make_core()
    publish(core, position("u1"))
    conn = connect(core, "u1")
    snap = _not_recovered(core, conn, resume_from=812)
    assert snap["seq"] == 1


def test_resume_after_five_minutes_gets_recovered_false() -> None:
    core = make_core()
    publish(core, position("u1"), now=NOW)
    publish(core, position("u1"), now=NOW + 10)
    conn = connect(core, "u1", now=NOW + 301)
    snap = _not_recovered(core, conn, resume_from=0, now=NOW + 301)
    assert snap["seq"] == 2


def test_resume_snapshot_covers_channels_already_subscribed() -> None:
    core = make_core()
    publish(core, position("u1"))
    conn = connect(core, "u1", "trades")
    sent = subscribe(core, conn, "positions", resume_from=99)
    [_, _, snap] = sent.to(conn)
    assert list(snap["data"]) == ["positions", "trades"]


# ---- rate limit ------------------------------------------------------------------------------------
def test_over_the_rate_limit_messages_are_dropped_with_one_notice_a_second() -> None:
    core = make_core()
    conn = connect(core, "u1")
    outputs: list[Any] = []
    for _ in range(150):
        core.receive_frame(conn, '{"type": "ping"}', NOW)
    core.receive_frame(conn, '{"type": "subscribe", "channels": ["positions"]}', NOW)
    sent = drain(core)
    outputs = sent.to(conn)
    assert [m["type"] for m in outputs].count("pong") == 100
    errors = [m for m in outputs if m["type"] == "error"]
    assert len(errors) == 1 and errors[0]["data"]["code"] == "RATE_LIMITED"
    check_envelope(errors[0], "u1")
    assert not sent.closes
    assert "info" not in [m["type"] for m in outputs]  # the subscribe over the limit was not processed
    publish(core, position("u1"))
    core.flush(NOW)
    assert drain(core).to(conn) == []
    # A second later the bucket has refilled: served again.
    assert send(core, conn, {"type": "ping"}, NOW + 1.0).types(conn) == ["pong"]


def test_five_seconds_over_the_limit_closes_1008() -> None:
    core = make_core()
    conn = connect(core, "u1", "positions")
    notices = 0
    close = None
    for i in range(10 * 300):
        now = NOW + i / 300
        sent = send(core, conn, '{"type": "ping"}', now)
        notices += sum(1 for m in sent.to(conn) if m["type"] == "error")
        if sent.closes:
            close = sent.closes[conn]
            break
    assert close is not None and (close.code, close.reason) == (1008, "Rate limit exceeded")
    assert 5.0 <= now - NOW <= 6.5
    assert 1 <= notices <= 6
    assert conn not in core.hub.connections
    core.receive_frame(conn, '{"type": "ping"}', now)
    publish(core, position("u1"))
    core.flush(now)
    assert core.data_to_send() == []  # nothing after the close


def test_a_quiet_second_resets_the_abuse_clock() -> None:
    core = make_core()
    conn = connect(core, "u1")
    now = NOW
    for burst in range(3):  # 3 s over the limit, a quiet second, repeated: never closed
        for i in range(3 * 300):
            now = NOW + burst * 5 + i / 300
            assert not send(core, conn, '{"type": "ping"}', now).closes
    assert conn in core.hub.connections


# ---- closing ---------------------------------------------------------------------------------------
def test_end_session_closes_that_sessions_sockets() -> None:
    core = make_core()
    mine = [connect(core, "u1", session="s1"), connect(core, "u1", session="s1")]
    other = connect(core, "u1", session="s2")
    assert core.end_session("s1", NOW) == 2
    sent = drain(core)
    assert {conn: (c.code, c.reason) for conn, c in sent.closes.items()} == \
        {conn: (1008, "Session expired") for conn in mine}
    assert list(core.hub.connections) == [other]
    assert core.end_session("s1", NOW) == 0


def test_shutdown_flushes_pending_then_closes_1001() -> None:
    core = make_core()
    a = connect(core, "u1", "positions")
    b = connect(core, "u2")
    publish(core, position("u1"))
    core.shutdown(NOW)
    outputs = core.data_to_send()
    assert isinstance(outputs[0], Outgoing) and outputs[0].connections == (a,)
    assert "seq" in ujson.loads(outputs[0].frame)  # the pending batch first
    closes = [o for o in outputs[1:] if isinstance(o, Closing)]
    causes = [ujson.loads(o.frame) for o in outputs[1:] if isinstance(o, Outgoing)]
    assert len(closes) == 2 == len(causes) and len(outputs) == 5
    assert [m["data"] for m in causes] == [{"code": "SERVER_SHUTTING_DOWN", "message": "Server shutting down",
                                            "details": {"closeCode": 1001}}] * 2
    assert {o.connection for o in closes} == {a, b}
    assert {(o.close.code, o.close.reason) for o in closes} == {(1001, "Server shutting down")}
    assert not core.hub.connections


def test_a_closed_connection_is_sent_nothing() -> None:
    core = make_core()
    a = connect(core, "u1", "positions")
    b = connect(core, "u1", "positions")
    core.closed(a, NOW)
    core.closed(a, NOW)  # twice is harmless
    core.receive_frame(a, '{"type": "ping"}', NOW)
    publish(core, position("u1"))
    core.flush(NOW)
    sent = drain(core)
    assert sent.to(a) == [] and sent.types(b) == ["position_update"]


# ---- stats through the engine ----------------------------------------------------------------------
def test_counters() -> None:
    core = make_core()
    a = connect(core, "u1", "positions")
    publish(core, *(position("u1", price=f"17{i}.00") for i in range(10)), now=NOW)
    core.flush(NOW + 0.5)
    send(core, a, {"type": "ping"})
    stats = core.stats
    assert stats.events_emitted == 10
    assert stats.messages_delivered == 1 and stats.unbatched_messages == 10
    assert stats.batch_efficiency() == pytest.approx(0.9)  # pings, infos and snapshots don't count
    assert stats.latency_ms()["p50"] == 500.0
    core.open(None, None, NOW)
    drain(core)
    assert stats.rejected_connections == 1
    core.closed(a, NOW + 10)
    assert stats.disconnects == 1 and stats.reconnects == 0
    connect(core, "u1", now=NOW + 20)   # back within a minute: a reconnect
    assert stats.reconnects == 1
    connect(core, "u2", now=NOW + 20)   # a first connection is not
    assert stats.reconnects == 1


def test_reconnect_after_a_long_absence_is_a_new_connection() -> None:
    core = make_core()
    conn = connect(core, "u1")
    core.closed(conn, NOW)
    connect(core, "u1", now=NOW + 3600)
    assert core.stats.reconnects == 0


def test_portfolio_query_is_the_full_snapshot() -> None:
    core = make_core()
    assert core.portfolio("nobody") == (0, {"positions": [], "orders": [], "account": None, "trades": []})
    publish(core, position("u1"), order("u1"), account("u1"), trade("u1"))
    seq, data = core.portfolio("u1")
    assert seq == 4 and list(data) == ALL and data["orders"][0]["orderId"] == "order-1"


def test_snapshot_contents() -> None:
    yesterday = datetime(2026, 1, 2, 15, 0, tzinfo=timezone.utc)  # the Friday before
    core = make_core()
    publish(core, order("u1", "old-open", "new", at=yesterday), order("u1", "old-done", "filled", at=yesterday),
            trade("u1", "old-trade", at=yesterday),
            position("u1", "AAPL"), position("u1", "TSLA"), position("u1", "TSLA", qty="0"),
            order("u1", "today-done", "canceled"), order("u1", "today-open", "accepted"),
            *(trade("u1", f"t{i:03d}", at=later(i)) for i in range(120)), account("u1", "99.00"))
    conn = connect(core, "u1")
    [_, snap] = subscribe(core, conn, *ALL).to(conn)
    data = snap["data"]
    assert snap["seq"] == 129 and list(data) == ALL
    assert [p["symbol"] for p in data["positions"]] == ["AAPL"]                    # open positions only
    assert [o["orderId"] for o in data["orders"]] == ["old-open", "today-done", "today-open"]
    assert data["account"]["equity"] == "99.00"
    trades = [t["tradeId"] for t in data["trades"]]
    assert len(trades) == 100 and trades[0] == "t020" and trades[-1] == "t119"     # today's, newest last


# ---- offsets given by a cluster ------------------------------------------------------------------------
def test_a_given_offset_is_used_instead_of_the_next_one() -> None:
    core = make_core(streaming={"immediate_channels": ()})
    conn = connect(core, "u1", "positions")
    assert core.receive_event(position("u1"), NOW, seq=41) == 41
    assert core.receive_event(position("u1", price="180.00"), NOW, seq=42) == 42
    core.flush(NOW)
    [batch] = drain(core).to(conn)
    assert batch["seq"] == 42
    assert core.receive_event(position("u1"), NOW) == 43  # unnumbered ones carry on from there


def test_a_given_offset_at_or_below_the_current_one_is_dropped() -> None:
    core = make_core(streaming={"immediate_channels": ()})
    conn = connect(core, "u1", "positions")
    core.receive_event(position("u1", price="180.00"), NOW, seq=10)
    assert core.receive_event(position("u1", price="1.00"), NOW, seq=10) == 10   # duplicate
    assert core.receive_event(position("u1", price="2.00"), NOW, seq=7) == 10    # stale
    core.flush(NOW)
    [only] = drain(core).to(conn)
    assert (only["seq"], only["data"]["currentPrice"]) == (10, "180.00")
    assert core.portfolio("u1")[1]["positions"][0]["currentPrice"] == "180.00"


def test_resume_across_a_gap_in_given_offsets_is_not_recovered() -> None:
    core = make_core()
    for seq in (1, 2, 3, 7, 8):  # 4..6 were numbered but never reached this node
        core.receive_event(position("u1"), NOW, seq=seq)
    conn = connect(core, "u1")
    snap = _not_recovered(core, conn, resume_from=2)
    assert snap["seq"] == 8
    conn2 = connect(core, "u1")
    sent = subscribe(core, conn2, "positions", resume_from=7)
    assert [m["type"] for m in sent.to(conn2)] == ["info", "position_update", "info"]
