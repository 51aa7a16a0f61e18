"""``PortfolioClient`` against a real server on a real socket: login, live events, subscriptions,
reconnect and resume, the close-code policy, pings, polling and staleness.

The batch window is far longer than any test, so only immediate channels (orders, trades) reach
the client unless a test calls ``service.flush()``. Servers close a client's socket through the core
(``core.close`` + ``pump``), exactly as they do for real.
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

import pytest

from portfolio_ws import constants as c
from portfolio_ws.client import (AccountEvent, ClientError, Connected, LoginFailed, OrderEvent, PortfolioClient,
                                 PositionEvent, Resumed, Snapshot, StatusChange, StreamClosed, Subscribed,
                                 TradeEvent, Unsubscribed)
from portfolio_ws.errors import UsageError
from tests.behaviour.client.conftest import FAST
from tests.builders import account, order, position, trade
from tests.harness import PASSWORD
from tests.behaviour.client.clients import started

LONG_WINDOW = 600_000


def server_conn_ids(server):
    return set(server.service.sockets)


def close_from_server(server, close):
    """The server closes every socket it has, as it would for that reason."""
    for conn_id in server.connection_ids():
        server.close_connection(conn_id, close)


# ---- connecting ----------------------------------------------------------------------------
async def test_login_subscribe_snapshot_and_live_events(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    alice = server.add_user("alice")
    server.publish(position(alice.user_id, "AAPL", "100", "175.50"))
    client, rec = make_client(server, username="alice", password=PASSWORD)
    await client.start()
    assert client.user_id == alice.user_id and client.session_id

    assert (await rec.next(StatusChange)).status == "connecting"
    connected = await rec.next(Connected)
    assert connected.connection_id.startswith("conn-") and connected.available_channels == c.CHANNELS
    assert client.status == "connected" and client.staleness == "live"
    assert (await rec.next(Subscribed)).channels == c.CHANNELS
    snap = await rec.next(Snapshot)
    assert snap.seq == 1 and snap.positions[0].current_price == Decimal("175.50")
    assert client.portfolio.positions["AAPL"].quantity == 100 and client.last_seq == 1

    server.publish(order(alice.user_id, "order-1", "accepted"))  # immediate
    accepted = await rec.next(OrderEvent)
    assert (accepted.seq, accepted.status) == (2, "accepted") and client.last_seq == 2
    server.publish(position(alice.user_id, "AAPL", "0"))         # waits in the window
    server.publish(account(alice.user_id, "99.50"))
    server.publish(trade(alice.user_id, "trade-1"))               # flushes it: one batch
    closed = await rec.next(PositionEvent)
    acct = await rec.next(AccountEvent)
    fill = await rec.next(TradeEvent)
    assert closed.closed and closed.seq == acct.seq == fill.seq == 5
    assert client.portfolio.positions == {} and client.portfolio.account.equity == Decimal("99.50")
    assert [t.trade_id for t in client.portfolio.trades] == ["trade-1"] and client.last_seq == 5


async def test_bad_credentials_raise_login_failed_and_nothing_connects(make_server, make_client):
    server = await make_server()
    server.add_user("alice")
    client, _ = make_client(server, username="alice", password="wrong password")
    with pytest.raises(LoginFailed, match="Invalid username or password"):
        await client.start()
    assert not server_conn_ids(server)


async def test_an_unreachable_server_is_a_client_error(make_client, make_server):
    server = await make_server()
    server.http.stop()
    await server.http.close_all_connections()
    client, _ = make_client(server, username="alice", password=PASSWORD)
    with pytest.raises(ClientError):
        await client.start()


def test_unknown_channels_and_missing_credentials_are_usage_errors():
    with pytest.raises(UsageError, match="unknown channel 'nope'"):
        PortfolioClient("http://127.0.0.1:1", session_id="x", channels=["orders", "nope"])
    with pytest.raises(UsageError):
        PortfolioClient("http://127.0.0.1:1", username="alice")


async def test_the_iterator_yields_every_event_and_ends_after_close(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, session = await server.user_session("alice")
    client, _ = make_client(server, session_id=session, channels=["orders"])
    seen = []
    async with client:
        async for event in client:
            seen.append(type(event).__name__)
            if isinstance(event, Snapshot):
                server.publish(order(u.user_id, "order-7"))
            if isinstance(event, OrderEvent):
                break
    assert seen == ["StatusChange", "StatusChange", "Connected", "Subscribed", "Snapshot", "OrderEvent"]
    assert client.status == "closed" and await client.wait_closed() == c.Close(1000, "Client closed")
    assert [e async for e in client.events()] == []  # a closed client's iterators end at once


async def test_subscribe_and_unsubscribe_while_connected(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, client, rec = await started(make_client, server, channels=["positions"])
    assert set(client.portfolio.positions) == {"AAPL"} and client.portfolio.orders == {}
    client.subscribe("orders", "positions")
    assert (await rec.next(Subscribed)).channels == ("positions", "orders")
    assert (await rec.next(Snapshot)).channels == {"orders"}
    assert set(client.portfolio.orders) == {"order-1"} and set(client.portfolio.positions) == {"AAPL"}
    client.unsubscribe("positions")
    assert (await rec.next(Unsubscribed)).channels == ("orders",)
    assert client.portfolio.positions == {} and client.channels == ["orders"]


# ---- reconnect and resume ------------------------------------------------------------------
async def test_after_1001_it_reconnects_and_resumes_what_it_missed(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, client, rec = await started(make_client, server)
    assert client.last_seq == 2
    before = server_conn_ids(server)

    close_from_server(server, c.SERVER_SHUTTING_DOWN)
    server.publish(order(u.user_id, "order-1", "filled", filled="50", avg="245.75"))  # while it is away
    server.publish(trade(u.user_id, "trade-1"))

    change = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    assert (change.code, change.reason) == (1001, "Server shutting down")
    assert change.retry_in == 0.5 * FAST.backoff_base  # random() 0.5, attempt 0
    await rec.next(Connected)
    filled = await rec.next(OrderEvent)
    replayed = await rec.next(TradeEvent)
    resumed = await rec.next(Resumed)
    assert (resumed.recovered, resumed.from_seq, resumed.to_seq) == (True, 2, 4)
    assert filled.status == "filled" and filled.seq == replayed.seq == 4
    assert not rec.of(Snapshot)[1:], "a recovered resume sends no snapshot"
    assert client.portfolio.orders["order-1"].status == "filled" and client.last_seq == 4
    assert server_conn_ids(server).isdisjoint(before) and client.connects == 2


async def test_a_resume_with_nothing_for_its_channels_still_advances_its_seq(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, client, rec = await started(make_client, server, channels=["orders"])
    assert client.last_seq == 2
    close_from_server(server, c.SERVER_SHUTTING_DOWN)
    server.publish(position(u.user_id, "MSFT", "10"))  # not watched
    assert await rec.next(Resumed) == Resumed(True, 2, 3)
    assert client.last_seq == 3 and not rec.since(PositionEvent)
    close_from_server(server, c.SERVER_SHUTTING_DOWN)
    assert await rec.next(Resumed) == Resumed(True, 3, 3)


async def test_when_the_gap_is_no_longer_held_the_snapshot_replaces_the_state(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW, recovery__max_events=1)
    u, client, rec = await started(make_client, server)
    assert set(client.portfolio.positions) == {"AAPL"}

    close_from_server(server, c.INTERNAL_ERROR_CLOSE)
    server.publish(position(u.user_id, "AAPL", "0"))   # closed while away: must leave the local table
    server.publish(position(u.user_id, "MSFT", "10"))
    server.publish(order(u.user_id, "order-1", "canceled"))

    resumed = await rec.next(Resumed)
    assert (resumed.recovered, resumed.from_seq, resumed.to_seq) == (False, 2, 5)
    snap = await rec.next(Snapshot)
    assert snap.seq == 5 and snap.channels == set(c.CHANNELS)
    assert set(client.portfolio.positions) == {"MSFT"}
    assert client.portfolio.orders["order-1"].status == "canceled" and client.last_seq == 5


async def test_after_a_network_drop_1006_it_reconnects(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, client, rec = await started(make_client, server)
    for handler in server.service.sockets.values():
        handler.ws_connection.stream.close()  # the TCP connection drops: no close frame
    change = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    assert change.code == 1006
    await rec.next(Resumed, lambda e: e.recovered)
    assert client.status == "connected"


async def test_service_shutdown_closes_1001_and_the_client_keeps_trying(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, client, rec = await started(make_client, server)
    await server.service.shutdown(drain_seconds=5)
    first = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    assert (first.code, first.reason) == (1001, "Server shutting down")
    # The stopping server turns each new socket away with 1001 too; the backoff grows each time.
    second = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    third = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    assert first.retry_in < second.retry_in < third.retry_in
    assert client.status == "reconnecting" and client.connects == 1


# ---- close-code policy ---------------------------------------------------------------------
@pytest.mark.parametrize("close", [c.SESSION_EXPIRED, c.RATE_LIMIT_EXCEEDED, c.MESSAGE_TOO_BIG_CLOSE,
                                   c.Close(1000, "")])
async def test_no_reconnect_after_1008_1009_or_1000(make_server, make_client, close):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, client, rec = await started(make_client, server)
    stream = client.events()
    close_from_server(server, close)
    seen = close if close.cause not in c.UNANNOUNCED_CAUSES else c.Close(close.code, close.reason)
    assert await client.wait_closed() == seen  # with the cause the server named first, if it does
    with pytest.raises(StreamClosed) as raised:
        async for _ in stream:
            pass
    assert raised.value.close == seen
    assert client.status == "closed" and client.connects == 1
    assert rec.of(StatusChange)[-1] == StatusChange("closed", close.code, close.reason)
    assert not any(e.status == "reconnecting" for e in rec.of(StatusChange))


async def test_logout_ends_the_stream_with_session_expired(make_server, make_client):
    server = await make_server()
    u, client, rec = await started(make_client, server)
    await server.fetch("/api/auth/logout", "POST", cookie=client.session_id)
    assert await client.wait_closed() == c.SESSION_EXPIRED


async def test_an_unknown_session_is_refused_1008_and_not_retried(make_server, make_client):
    server = await make_server()
    client, rec = make_client(server, session_id="no-such-session")
    await client.start()
    assert await client.wait_closed() == c.Close(1008, "Authentication required")  # no cause: none is sent
    assert client.connects == 0


async def test_after_1013_it_waits_longer_then_reconnects(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    u, client, rec = await started(make_client, server)
    close_from_server(server, c.SLOW_CONSUMER)
    change = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    assert (change.code, change.reason) == (1013, "Slow consumer")
    assert change.retry_in == FAST.try_again_later + 0.5 * FAST.backoff_base
    await rec.next(Resumed)
    close_from_server(server, c.SERVER_SHUTTING_DOWN)  # the same attempt after a 1001: no extra wait
    assert (await rec.next(StatusChange, lambda e: e.status == "reconnecting")).retry_in == 0.5 * FAST.backoff_base


async def test_server_capacity_1013_is_retried_until_a_place_frees_up(make_server, make_client):
    server = await make_server(limits__total_connections=1)
    u, session = await server.user_session("alice")
    squatter = await server.connect(session)
    client, rec = make_client(server, session_id=session)
    await client.start()
    refused = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    assert (refused.code, refused.reason) == (1013, "Server capacity reached - try again later")
    squatter.close()
    await rec.next(Connected)
    await rec.next(Snapshot)


async def test_after_10_refusals_it_polls_meanwhile(make_server, make_client):
    server = await make_server(limits__total_connections=1)
    u, session = await server.user_session("alice")
    server.publish(position(u.user_id, "AAPL", "100"))
    squatter = await server.connect(session)
    timings = dataclasses.replace(FAST, try_again_later=0.0, poll_after_failures=3, retry_while_polling=0.1)
    client, rec = make_client(server, session_id=session, timings=timings)
    await client.start()
    polling = await rec.next(StatusChange, lambda e: e.status == "polling")
    assert polling.code == 1013 and polling.retry_in == 0.1 * 0.75  # the cap, jittered (random 0.5)
    assert len([e for e in rec.of(StatusChange) if e.status == "reconnecting"]) == 2
    snap = await rec.next(Snapshot)
    assert snap.seq == 1 and set(client.portfolio.positions) == {"AAPL"}
    squatter.close()
    await rec.next(Connected)
    assert (await rec.next(Resumed)).recovered


# ---- streaming disabled: REST polling ------------------------------------------------------
async def test_streaming_disabled_polls_the_rest_portfolio_until_streaming_returns(make_server, make_client):
    server = await make_server(streaming__enabled=False, streaming__batch_window_ms=LONG_WINDOW)
    u, session = await server.user_session("alice")
    server.publish(position(u.user_id, "AAPL", "100"))
    client, rec = make_client(server, session_id=session, channels=["positions", "orders"])
    await client.start()
    polling = await rec.next(StatusChange, lambda e: e.status == "polling")
    assert (polling.code, polling.reason) == (1013, "Realtime streaming disabled")
    first = await rec.next(Snapshot)
    assert first.seq == 1 and first.channels == {"positions", "orders"} and first.account is None
    assert client.staleness == "live"
    server.publish(order(u.user_id, "order-1"))
    second = await rec.next(Snapshot)  # a poll is only dispatched when something changed
    assert second.seq == 2 and client.portfolio.orders["order-1"].status == "new"

    server.service.set_enabled(True)
    await rec.next(Connected)
    assert (await rec.next(Resumed)) == Resumed(True, 2, 2)
    assert client.status == "connected"
    server.publish(order(u.user_id, "order-1", "accepted"))
    assert (await rec.next(OrderEvent)).status == "accepted"


async def test_over_the_per_user_limit_it_polls_on_the_cause_and_connects_once_a_slot_frees(make_server,
                                                                                          make_client):
    """CONNECTION_LIMIT (the error before the 1008) means poll, where a bare 1008 means stop."""
    server = await make_server(limits__connections_per_user=1, streaming__batch_window_ms=LONG_WINDOW)
    u, session = await server.user_session("alice")
    server.publish(position(u.user_id, "AAPL", "100"))
    other = await server.connect(session)  # the user's one slot
    client, rec = make_client(server, session_id=session)
    await client.start()
    polling = await rec.next(StatusChange, lambda e: e.status == "polling")
    assert (polling.code, polling.reason) == (1008, "Maximum connections exceeded (1 per user)")
    assert client.last_close is not None and client.last_close.cause == c.CloseCause.CONNECTION_LIMIT
    assert (await rec.next(Snapshot)).seq == 1 and "AAPL" in client.portfolio.positions
    other.conn.close()
    await rec.next(Connected)  # the socket, retried while polling, is admitted
    assert client.status == "connected"


async def test_polling_with_an_expired_session_ends_the_client(make_server, make_client):
    server = await make_server(streaming__enabled=False)
    u, session = await server.user_session("alice")
    client, rec = make_client(server, session_id=session)
    await client.start()
    await rec.next(Snapshot)
    await server.fetch("/api/auth/logout", "POST", cookie=session)
    closed = await client.wait_closed()
    assert closed.code == 1008 and client.status == "closed"


# ---- heartbeat and staleness ---------------------------------------------------------------
async def test_no_pong_within_the_timeout_reconnects(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    real = server.service.receive_frame

    def deaf_to_pings(conn_id, frame):
        if '"ping"' not in str(frame):
            real(conn_id, frame)

    server.service.receive_frame = deaf_to_pings
    timings = dataclasses.replace(FAST, ping_interval=0.05, pong_timeout=0.1)
    u, client, rec = await started(make_client, server, timings=timings)
    change = await rec.next(StatusChange, lambda e: e.status == "reconnecting")
    assert (change.code, change.reason) == (1006, "Pong timeout")
    server.service.receive_frame = real
    await rec.next(Resumed)
    assert client.connects == 2


async def test_pongs_keep_the_connection_and_staleness_follows_the_clock(make_server, make_client):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    real = server.service.receive_frame
    pings = {"count": 0, "at": 0, "reached": asyncio.Event()}

    def counting(conn_id, frame):
        if '"ping"' in str(frame):
            pings["count"] += 1
            if pings["count"] >= pings["at"]:
                pings["reached"].set()
        real(conn_id, frame)

    async def pings_reach(n):
        pings["at"] = n
        pings["reached"].clear()
        if pings["count"] < n:
            await asyncio.wait_for(pings["reached"].wait(), 10)

    server.service.receive_frame = counting
    now = [1000.0]
    timings = dataclasses.replace(FAST, ping_interval=0.01, pong_timeout=0.5)
    u, client, rec = await started(make_client, server, timings=timings, clock=lambda: now[0])
    assert client.staleness == "live"
    now[0] += 6
    assert client.staleness == "delayed"
    now[0] += 25
    assert client.staleness == "stale"
    # The client pings again only once the previous ping was answered, so a 5th ping means four
    # pongs came back in time, and the latest made the data live again.
    await pings_reach(pings["count"] + 5)
    assert client.staleness == "live" and client.connects == 1 and client.status == "connected"
    assert not rec.of(PositionEvent) and not rec.since(StatusChange)
