"""Slow consumers (issue 6): each connection's unread outbound bytes are bounded
(``streaming.max_outbound_bytes``); a peer that stops reading is closed 1013 ``Slow consumer``,
removed from the hub, and its buffer freed, while everyone else is served."""

from __future__ import annotations

import asyncio
import gc
import weakref

import ujson

from dataclasses import replace

from tests.builders import trade
from tests.rawws import RawPeer

LIMIT = 256 * 1024
BIG = "s" * 8000  # a strategy id that makes every trade frame ~8 KB


def big_trade(user: str, trade_id: str):
    return replace(trade(user, trade_id), strategy_id=BIG)


async def test_a_peer_that_never_reads_is_closed_1013_removed_and_freed(make_server):
    server = await make_server(streaming__max_outbound_bytes=LIMIT)
    alice, alice_cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    healthy = await server.connect(bob_cookie)
    await healthy.subscribe("trades")
    await healthy.expect("snapshot")

    stalled = await RawPeer.connect(server.port, alice_cookie, receive_buffer=4096)
    await stalled.send_text(ujson.dumps({"type": "subscribe", "channels": ["trades"]}))
    [conn_id] = server.connection_ids(alice.user_id)
    await server.until(lambda: server.subscribed(conn_id))  # the peer reads nothing from now on
    hub = server.service.core.hub
    handler = server.service.sockets[conn_id]
    stream = weakref.ref(handler.ws_connection.stream)

    published = 0
    while conn_id in server.connection_ids():  # publish until the server gives up on the stalled peer
        assert published < 2000, "a peer that reads nothing was never closed"
        server.publish(big_trade(alice.user_id, f"t{published}"))
        published += 1
        if published % 10 == 0:
            server.publish(trade(bob.user_id, f"b{published}"))
            await asyncio.sleep(0)
    assert conn_id not in server.service.sockets
    assert alice.user_id not in hub.by_user  # no window accumulates for a user with no connection
    for n in range(100):  # later events are kept in alice's state, never queued for the closed socket
        server.publish(big_trade(alice.user_id, f"late{n}"))

    # The peer starts reading again: what was queued, then the close frame.
    (code, reason), texts = await stalled.read_until_close()
    assert (code, reason) == (1013, "Slow consumer")
    # The kernel's buffers and the server's bounded queue held what was sent before the close; nothing after.
    # "max_outbound_bytes unread" counts the kernel's send queue too (SO_SNDBUF capped): what reached
    # the peer after it stopped reading is the limit, one frame over it, and its own small receive buffer
    unread = sum(len(t) for t in texts)
    assert unread <= LIMIT + 48 * 1024, f"{unread} bytes were held for a peer with a {LIMIT}-byte budget"
    trades = [ujson.loads(t)["data"].get("tradeId") for t in texts]
    assert f"t{published - 1}" in trades and not any(str(t).startswith("late") for t in trades)
    stalled.close()
    await asyncio.wait_for(handler.closed_future, 10)
    assert handler.ws_connection is None
    del handler
    gc.collect()
    assert stream() is None, "the stalled connection's buffer is still referenced"

    # bob was served throughout
    received = 0
    while received < published // 10:
        msg = await healthy.recv()
        assert msg is not None and msg["userId"] == bob.user_id
        received += len(msg["data"]["trades"]) if msg["type"] == "batch" else 1
    await healthy.assert_nothing_pending()
