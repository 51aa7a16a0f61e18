"""The HTTP API over a real socket: login, logout, me, portfolio, health, and errors as JSON."""

from __future__ import annotations

from typing import Any

import ujson

from tests.builders import account, order, position, trade
from tests.harness import PASSWORD, FakeClock

LOGIN = "/api/auth/login"


def cookie_of(response: Any) -> tuple[str, dict[str, str | None]]:
    """The session id and the attributes (lower-cased names) of the response's ``Set-Cookie``."""
    [header] = response.headers.get_list("Set-Cookie")
    first, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    assert name == "session", header
    attrs: dict[str, str | None] = {}
    for attribute in attributes:
        key, sep, val = attribute.partition("=")
        attrs[key.lower()] = val if sep else None
    return value, attrs


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.code == status, (response.code, response.body)
    assert response.headers["Content-Type"].startswith("application/json")
    body = ujson.loads(response.body)
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


# ---- login ---------------------------------------------------------------------------------
async def test_login_sets_an_httponly_lax_session_cookie(make_server):
    server = await make_server()
    user = server.add_user("alice")
    response = await server.fetch(LOGIN, "POST", {"username": "alice", "password": PASSWORD})
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert ujson.loads(response.body) == {"userId": user.user_id, "username": "alice"}
    session_id, attrs = cookie_of(response)
    assert len(session_id) >= 43  # 256 random bits, URL-safe base64
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "secure" not in attrs  # plain http: a Secure cookie would never come back


async def test_every_login_gets_a_new_session_id_and_the_old_one_ends(make_server):
    server = await make_server()
    server.add_user("alice")
    credentials = {"username": "alice", "password": PASSWORD}
    first, _ = cookie_of(await server.fetch(LOGIN, "POST", credentials))
    second, _ = cookie_of(await server.fetch(LOGIN, "POST", credentials, cookie=first))
    assert second != first
    assert (await server.fetch("/api/auth/me", cookie=first)).code == 401
    assert (await server.fetch("/api/auth/me", cookie=second)).code == 200
    old_socket = await server.connect(first, expect_connected=False)
    assert await old_socket.recv() is None
    assert (old_socket.close_code, old_socket.close_reason) == (1008, "Authentication required")

    other_device, _ = cookie_of(await server.fetch(LOGIN, "POST", credentials))  # a login from elsewhere
    assert other_device not in (first, second)
    assert (await server.fetch("/api/auth/me", cookie=second)).code == 200
    assert (await server.fetch("/api/auth/me", cookie=other_device)).code == 200


async def test_wrong_password_and_unknown_user_get_the_same_401(make_server):
    server = await make_server()
    server.add_user("alice")
    wrong = await server.fetch(LOGIN, "POST", {"username": "alice", "password": PASSWORD + "!"})
    unknown = await server.fetch(LOGIN, "POST", {"username": "mallory", "password": PASSWORD})
    assert error_of(wrong, 401) == error_of(unknown, 401)
    assert wrong.body == unknown.body
    for response in (wrong, unknown):
        assert not response.headers.get_list("Set-Cookie")


async def test_malformed_login_bodies_get_a_400_json_error(make_server):
    server = await make_server()
    server.add_user("alice")
    bodies: list[Any] = [
        b"{not json",
        b"",
        b"[\"alice\", \"pw\"]",
        b"\"alice\"",
        b"null",
        {},
        {"username": "alice"},
        {"password": PASSWORD},
        {"username": 7, "password": PASSWORD},
        {"username": "alice", "password": ["x"]},
        {"username": "", "password": PASSWORD},
        {"username": "alice", "password": ""},
    ]
    for body in bodies:
        response = await server.fetch(LOGIN, "POST", body)
        error_of(response, 400)
        assert not response.headers.get_list("Set-Cookie"), body


async def test_an_oversized_login_body_gets_413(make_server):
    server = await make_server()
    server.add_user("alice")
    body = {"username": "alice", "password": PASSWORD, "padding": "x" * 100_000}
    error_of(await server.fetch(LOGIN, "POST", body), 413)


# ---- me / logout ---------------------------------------------------------------------------
async def test_me_needs_a_session(make_server):
    server = await make_server()
    user, cookie = await server.user_session("alice")
    me = await server.fetch("/api/auth/me", cookie=cookie)
    assert me.code == 200
    assert ujson.loads(me.body) == {"userId": user.user_id, "username": "alice", "isAdmin": False}
    error_of(await server.fetch("/api/auth/me"), 401)
    error_of(await server.fetch("/api/auth/me", cookie="forged-session-id"), 401)


async def test_logout_ends_the_session_and_closes_only_its_sockets(make_server):
    server = await make_server()
    user, phone = await server.user_session("alice")
    laptop = await server.login("alice")
    on_phone = [await server.connect(phone), await server.connect(phone)]
    on_laptop = await server.connect(laptop)
    await on_laptop.subscribe("orders")
    await on_laptop.expect("snapshot")

    response = await server.fetch("/api/auth/logout", "POST", cookie=phone)
    assert response.code == 200
    [cleared] = response.headers.get_list("Set-Cookie")
    assert cleared.startswith("session=;") or cleared.startswith('session="";')
    for client in on_phone:
        assert await client.closed() == (1008, "Session expired")
    error_of(await server.fetch("/api/auth/me", cookie=phone), 401)
    error_of(await server.fetch("/api/portfolio", cookie=phone), 401)

    # The other session of the same user is untouched and still streams.
    assert (await server.fetch("/api/auth/me", cookie=laptop)).code == 200
    await on_laptop.assert_nothing_pending()
    server.publish(order(user.user_id, "order-1"))  # immediate channel: no waiting for the window
    assert (await on_laptop.expect("order_update"))["seq"] == 1


async def test_logout_without_a_session_is_harmless(make_server):
    server = await make_server()
    response = await server.fetch("/api/auth/logout", "POST")
    assert response.code == 200
    assert ujson.loads(response.body) == {"loggedOut": False}


# ---- portfolio / health / errors -----------------------------------------------------------
async def test_portfolio_is_the_full_snapshot_document(make_server):
    server = await make_server()
    user, cookie = await server.user_session("alice")
    _, bob_cookie = await server.user_session("bob")
    uid = user.user_id
    server.publish(position(uid, "AAPL"))
    server.publish(order(uid, "order-1"))
    server.publish(account(uid))
    server.publish(trade(uid, "trade-1"))

    response = await server.fetch("/api/portfolio", cookie=cookie)
    assert response.code == 200
    doc = ujson.loads(response.body)
    assert set(doc) == {"type", "timestamp", "userId", "seq", "data"}
    assert doc["type"] == "snapshot" and doc["userId"] == uid and doc["seq"] == 4
    assert set(doc["data"]) == {"positions", "orders", "account", "trades"}
    assert [p["symbol"] for p in doc["data"]["positions"]] == ["AAPL"]
    assert [o["orderId"] for o in doc["data"]["orders"]] == ["order-1"]
    assert doc["data"]["account"]["equity"] == "104308.75"
    assert [t["tradeId"] for t in doc["data"]["trades"]] == ["trade-1"]

    # The same document a WebSocket snapshot of every channel holds.
    client = await server.connect(cookie)
    await client.subscribe("positions", "orders", "account", "trades")
    snap = await client.expect("snapshot")
    assert (snap["seq"], snap["data"]) == (doc["seq"], doc["data"])

    bob = ujson.loads((await server.fetch("/api/portfolio", cookie=bob_cookie)).body)
    assert bob["seq"] == 0
    assert bob["data"] == {"positions": [], "orders": [], "account": None, "trades": []}
    error_of(await server.fetch("/api/portfolio"), 401)


async def test_health_needs_no_auth(make_server):
    server = await make_server()
    response = await server.fetch("/api/health")
    assert response.code == 200
    body = ujson.loads(response.body)
    assert body["status"] == "ok" and body["features"] == {"realtimePortfolio": True}


async def test_unknown_api_paths_and_methods_get_json_errors(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    for path in ("/api/nope", "/api/auth", "/api/admin/other", "/api/portfolio/extra"):
        error_of(await server.fetch(path, cookie=cookie), 404)
    error_of(await server.fetch(LOGIN), 405)
    error_of(await server.fetch("/api/portfolio", "POST", {}, cookie=cookie), 405)


# ---- session lifetime ----------------------------------------------------------------------
async def test_an_open_socket_keeps_its_session_alive_until_the_absolute_expiry(make_server):
    clock = FakeClock(1_767_625_200.0)  # 2026-01-05 15:00 UTC
    server = await make_server(clock=clock, auth__session_idle_seconds=600, auth__session_absolute_seconds=3600)
    _, cookie = await server.user_session("alice")
    _, other = await server.user_session("bob")
    client = await server.connect(cookie)
    for _ in range(5):  # 50 minutes without an HTTP request: the periodic recheck is the socket's use
        clock.now += 590
        await server.service.recheck.run()  # what the PeriodicCallback runs
    await client.assert_nothing_pending()
    assert (await server.fetch("/api/auth/me", cookie=cookie)).code == 200
    error_of(await server.fetch("/api/auth/me", cookie=other), 401)  # bob's idle session ended

    clock.now += 3600 - 5 * 590  # the absolute lifetime is over
    await server.service.recheck.run()
    assert await client.closed() == (1008, "Session expired")
    error_of(await server.fetch("/api/auth/me", cookie=cookie), 401)


async def test_equity_today_from_the_first_account_update_with_the_session(make_server):
    from datetime import timedelta

    import ujson

    from tests.builders import T0, account

    server = await make_server()
    alice, cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    empty = ujson.loads((await server.fetch("/api/portfolio/equity", cookie=cookie)).body)
    assert empty == {"userId": alice.user_id, "sessionOpen": None, "sessionClose": None, "points": []}
    open_ = T0 - timedelta(minutes=30)                       # T0 is 10:00 New York on a Monday
    for minutes, equity in ((0, "100000.00"), (0.5, "100100.00"), (1, "99950.50"), (95, "101234.56")):
        server.publish(account(alice.user_id, equity, at=open_ + timedelta(minutes=minutes)))
    body = ujson.loads((await server.fetch("/api/portfolio/equity", cookie=cookie)).body)
    assert (body["sessionOpen"], body["sessionClose"]) == ("2026-01-05T14:30:00.000Z", "2026-01-05T21:00:00.000Z")
    assert body["points"] == [{"t": "2026-01-05T14:30:00.000Z", "equity": "100100.00"},
                              {"t": "2026-01-05T14:31:00.000Z", "equity": "99950.50"},
                              {"t": "2026-01-05T16:05:00.000Z", "equity": "101234.56"}]
    # Only one's own.
    assert ujson.loads((await server.fetch("/api/portfolio/equity", cookie=bob_cookie)).body)["points"] == []


async def test_a_login_with_an_unknown_field_is_refused_naming_it(make_server):
    server = await make_server()
    server.add_user("alice")
    for extra in ({"remember": True}, {"user": "alice"}, {"otp": "123456"}):
        response = await server.fetch("/api/auth/login", "POST", {"username": "alice", "password": "x", **extra})
        error = ujson.loads(response.body)["error"]
        assert response.code == 400 and error == {"code": "INVALID_REQUEST", "field": next(iter(extra)),
                                                  "message": error["message"]}, error
        assert "Set-Cookie" not in response.headers
