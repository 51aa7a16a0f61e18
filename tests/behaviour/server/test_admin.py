"""``GET /api/admin/websocket-stats`` and the feature flag, over a real socket (PROTOCOL.md, HTTP).

The batch window is far longer than any test: windows leave only through immediate channels or a
``service.flush()`` the test calls, so every counter is known exactly.
"""

from __future__ import annotations

import re
from typing import Any

import ujson

from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds import Feed
from tests.builders import T0, account, order, position, trade
from tests.harness import FakeClock

LONG_WINDOW = 600_000
TOKEN = "s3cret-admin-token-for-tests"
STATS = "/api/admin/websocket-stats"
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class StubFeed(Feed):
    source = "stub"

    def __init__(self, health: FeedHealth) -> None:
        self.current = health

    async def start(self, bus: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    def health(self) -> FeedHealth:
        return self.current


async def stats(server: Any, token: str = TOKEN) -> dict[str, Any]:
    response = await server.fetch(STATS, headers={"Authorization": f"Bearer {token}"})
    assert response.code == 200, response.body
    return ujson.loads(response.body)  # type: ignore[no-any-return]


async def connect(server: Any, cookie: str) -> tuple[Any, Any]:
    """A connected client and its server-side handler (``closed_future``: the server saw it go)."""
    before = set(server.service.sockets)
    client = await server.connect(cookie)
    [conn_id] = set(server.service.sockets) - before
    return client, server.service.sockets[conn_id]


# ---- access --------------------------------------------------------------------------------
async def test_stats_need_an_admin_session_or_the_admin_token(make_server):
    server = await make_server(auth__admin_token=TOKEN)
    _, admin_cookie = await server.user_session("root", admin=True)
    _, user_cookie = await server.user_session("alice")

    anonymous = await server.fetch(STATS)
    assert anonymous.code == 401
    assert ujson.loads(anonymous.body)["error"]["message"]
    assert (await server.fetch(STATS, cookie="not-a-session")).code == 401
    forbidden = await server.fetch(STATS, cookie=user_cookie)
    assert forbidden.code == 403 and "error" in ujson.loads(forbidden.body)
    assert (await server.fetch(STATS, cookie=admin_cookie)).code == 200
    assert (await server.fetch(STATS, headers={"Authorization": f"Bearer {TOKEN}"})).code == 200
    wrong = await server.fetch(STATS, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.code == 401
    # A wrong token is refused even alongside a non-admin session.
    assert (await server.fetch(STATS, cookie=user_cookie, headers={"Authorization": "Bearer nope"})).code == 401


async def test_without_a_configured_token_no_bearer_header_gets_in(make_server):
    server = await make_server()  # auth.admin_token empty
    for header in ("Bearer ", "Bearer", "Bearer x", "Basic cm9vdDpyb290"):
        response = await server.fetch(STATS, headers={"Authorization": header})
        assert response.code == 401, header


# ---- the document --------------------------------------------------------------------------
async def test_fresh_server_reports_zeroes_without_dividing_by_zero(make_server):
    clock = FakeClock(T0.timestamp())
    server = await make_server(clock=clock, auth__admin_token=TOKEN)
    doc = await stats(server)
    assert doc["status"] == "healthy" and doc["enabled"] is True
    assert doc["activeConnections"] == 0 and doc["connectionsByUser"] == {}
    assert doc["totalMessagesDelivered"] == 0 and doc["totalEventsEmitted"] == 0
    assert doc["totalDisconnects"] == 0 and doc["totalReconnects"] == 0
    perf = doc["performance"]
    assert perf["batchEfficiency"] == "0.0%"
    assert perf["disconnectRatePerMinute"] == "0.00"
    assert perf["avgConnectionDurationSeconds"] == 0
    assert set(perf["latencyMs"]) >= {"p50", "p95", "p99"}
    assert doc["uptime"] == {"seconds": 0, "formatted": "00:00:00"}
    assert doc["timestamp"] == "2026-01-05T15:00:00.000Z"
    assert doc["feed"]["source"] == "none" and doc["feed"]["lastEventAt"] is None
    assert doc["limits"]["connectionsPerUser"] == 5 and doc["limits"]["totalConnections"] == 100


async def test_stats_match_what_happened(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW, auth__admin_token=TOKEN,
                               limits__connections_per_user=4, limits__total_connections=50)
    alice, alice_cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    a1 = await server.connect(alice_cookie)
    a2 = await server.connect(alice_cookie)
    b1, b1_handler = await connect(server, bob_cookie)
    await a1.subscribe("positions")
    await a2.subscribe("positions", "orders")
    await b1.subscribe("orders")
    for client in (a1, a2, b1):
        await client.expect("snapshot")

    doc = await stats(server)
    assert doc["activeConnections"] == 3
    assert doc["connectionsByUser"] == {alice.user_id: 2, bob.user_id: 1}
    assert doc["totalMessagesDelivered"] == 0 and doc["totalEventsEmitted"] == 0
    assert doc["performance"]["batchEfficiency"] == "0.0%"

    for price in ("175.00", "175.10", "175.20", "175.30"):  # four updates of one symbol, one window
        server.publish(position(alice.user_id, "AAPL", price=price))
    server.service.flush()
    assert (await a1.expect("position_update"))["data"]["currentPrice"] == "175.30"
    assert (await a2.expect("position_update"))["data"]["currentPrice"] == "175.30"
    server.publish(order(alice.user_id, "order-1"))  # immediate: a2 only
    await a2.expect("order_update")
    server.publish(order(bob.user_id, "order-9"))    # immediate: b1
    await b1.expect("order_update")
    server.publish(account(bob.user_id))             # bob has no account subscription: no message
    server.service.flush()
    for client in (a1, a2, b1):
        await client.assert_nothing_pending()

    doc = await stats(server)
    assert doc["status"] == "healthy"
    assert doc["totalEventsEmitted"] == 7
    # Event messages written: a1 1, a2 2, b1 1 (snapshots and info/pong are not event deliveries).
    assert doc["totalMessagesDelivered"] == 4
    # One message per event per connection would have been 4 + 4 + 1 + 1 = 10: 1 - 4/10 = 60%.
    assert doc["performance"]["batchEfficiency"] == "60.0%"
    latency = doc["performance"]["latencyMs"]
    for key in ("p50", "p95", "p99"):
        assert isinstance(latency[key], (int, float)) and latency[key] >= 0, latency
    assert latency["p50"] <= latency["p95"] <= latency["p99"]
    assert doc["totalDisconnects"] == 0 and doc["totalReconnects"] == 0

    b1.close()
    await b1_handler.closed_future
    doc = await stats(server)
    assert doc["activeConnections"] == 2 and doc["connectionsByUser"] == {alice.user_id: 2}
    assert doc["totalDisconnects"] == 1 and doc["totalReconnects"] == 0

    await server.connect(bob_cookie)  # bob is back within a minute: a reconnect
    doc = await stats(server)
    assert doc["activeConnections"] == 3
    assert doc["connectionsByUser"] == {alice.user_id: 2, bob.user_id: 1}
    assert doc["totalDisconnects"] == 1 and doc["totalReconnects"] == 1

    assert doc["limits"]["connectionsPerUser"] == 4 and doc["limits"]["totalConnections"] == 50
    assert doc["limits"]["messagesPerSecond"] == 100
    assert set(doc["uptime"]) == {"seconds", "formatted"} and doc["uptime"]["seconds"] >= 0
    assert re.fullmatch(r"\d\d:\d\d:\d\d", doc["uptime"]["formatted"])
    assert doc["feed"] == {**doc["feed"], "source": "none", "connected": True, "lastEventAt": None}
    assert ISO_MS.fullmatch(doc["timestamp"])
    assert re.fullmatch(r"\d{1,3}\.\d%", doc["performance"]["batchEfficiency"])


async def test_uptime_and_connection_durations_follow_the_clock(make_server):
    clock = FakeClock(T0.timestamp())
    server = await make_server(clock=clock, auth__admin_token=TOKEN)
    _, cookie = await server.user_session("alice")
    first, handler = await connect(server, cookie)
    clock.now += 10
    first.close()
    await handler.closed_future
    await server.connect(cookie)
    clock.now += 3715
    doc = await stats(server)
    assert doc["uptime"] == {"seconds": 3725, "formatted": "01:02:05"}
    # One connection closed after 10 s, one open for 3715 s.
    assert doc["performance"]["avgConnectionDurationSeconds"] == 3725 / 2
    assert doc["totalReconnects"] == 1
    clock.now += 2 * 86400
    assert (await stats(server))["uptime"] == {"seconds": 176525, "formatted": "2d 01:02:05"}


async def test_feed_section_and_offline_status_come_from_the_feed(make_server):
    clock = FakeClock(T0.timestamp())
    feed = StubFeed(FeedHealth(source="stub", connected=True, last_event_at=clock.now - 10, market_open=True))
    server = await make_server(clock=clock, feed=feed, auth__admin_token=TOKEN)
    doc = await stats(server)
    assert doc["status"] == "healthy"
    assert doc["feed"]["source"] == "stub" and doc["feed"]["connected"] is True
    assert doc["feed"]["lastEventAt"] == "2026-01-05T14:59:50.000Z"

    feed.current = FeedHealth(source="stub", connected=True, last_event_at=clock.now - 301, market_open=True)
    assert (await stats(server))["status"] == "offline"  # silent over 5 minutes while the market is open
    feed.current = FeedHealth(source="stub", connected=True, last_event_at=clock.now - 3600, market_open=False)
    assert (await stats(server))["status"] == "healthy"  # silence outside market hours is normal
    feed.current = FeedHealth(source="stub", connected=False, last_event_at=clock.now, market_open=True)
    doc = await stats(server)
    assert doc["status"] == "offline" and doc["feed"]["connected"] is False


async def test_many_disconnects_make_the_status_degraded(make_server):
    server = await make_server(auth__admin_token=TOKEN)
    _, cookie = await server.user_session("alice")
    for _ in range(4):
        client, handler = await connect(server, cookie)
        client.close()
        await handler.closed_future
    assert (await stats(server))["status"] == "healthy"  # 4 a minute: under the floor of 5
    client, handler = await connect(server, cookie)
    client.close()
    await handler.closed_future
    doc = await stats(server)
    assert doc["totalDisconnects"] == 5
    assert doc["status"] == "degraded"


async def test_events_nobody_receives_do_not_make_the_status_degraded(make_server):
    """Efficiency is about messages to connections; a feed running with nobody connected is healthy."""
    server = await make_server(auth__admin_token=TOKEN)
    user = server.add_user("alice")
    for i in range(150):
        server.publish(trade(user.user_id, f"trade-{i}"))
    doc = await stats(server)
    assert doc["totalEventsEmitted"] == 150 and doc["totalMessagesDelivered"] == 0
    assert doc["performance"]["batchEfficiency"] == "0.0%"
    assert doc["status"] == "healthy"


async def test_unbatched_delivery_of_many_events_makes_the_status_degraded(make_server):
    server = await make_server(auth__admin_token=TOKEN)
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.subscribe("trades")
    await client.expect("snapshot")
    for i in range(101):  # trades are immediate: one message each, 0% saved
        server.publish(trade(user.user_id, f"trade-{i}"))
    for _ in range(101):
        await client.expect("trade_executed")
    doc = await stats(server)
    assert doc["performance"]["batchEfficiency"] == "0.0%"
    assert doc["status"] == "degraded"


# ---- the feature flag ----------------------------------------------------------------------
async def test_flag_off_closes_sockets_1013_and_rest_still_works(make_server):
    server = await make_server(streaming__enabled=False, auth__admin_token=TOKEN)
    user, cookie = await server.user_session("alice")
    _, admin_cookie = await server.user_session("root", admin=True)
    server.publish(position(user.user_id))

    for who in (cookie, None):
        client = await server.connect(who, expect_connected=False)
        if who is not None:  # not even CONNECTED: the machine-readable cause, then the close
            assert (await client.expect("error"))["data"] == {
                "code": "STREAMING_DISABLED", "message": "Realtime streaming disabled", "details": {"closeCode": 1013}}
        assert await client.recv() is None  # no data at all to a peer without a session
        assert (client.close_code, client.close_reason) == (1013, "Realtime streaming disabled")

    health = await server.fetch("/api/health")
    assert health.code == 200
    assert ujson.loads(health.body)["features"] == {"realtimePortfolio": False}
    doc = await stats(server)
    assert doc["status"] == "disabled" and doc["enabled"] is False
    assert doc["activeConnections"] == 0
    response = await server.fetch(STATS, cookie=admin_cookie)
    assert response.code == 200 and ujson.loads(response.body)["status"] == "disabled"

    portfolio = await server.fetch("/api/portfolio", cookie=cookie)
    assert portfolio.code == 200
    body = ujson.loads(portfolio.body)
    assert body["seq"] == 1 and [p["symbol"] for p in body["data"]["positions"]] == ["AAPL"]
    me = await server.fetch("/api/auth/me", cookie=await server.login("alice"))
    assert me.code == 200 and ujson.loads(me.body)["userId"] == user.user_id


async def test_flag_on_health_says_so(make_server):
    server = await make_server()
    health = await server.fetch("/api/health")
    assert health.code == 200
    assert ujson.loads(health.body)["features"] == {"realtimePortfolio": True}
