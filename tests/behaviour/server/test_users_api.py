"""POST /api/v1/users and DELETE /api/v1/users/{userId} against a real server on a real socket: an
admin-scope key creates users (with a password, who log in, or without, who can't), a taken name is
409 with the existing id, and a removed user's sessions end and open sockets close (error
SESSION_EXPIRED, then 1008)."""

from __future__ import annotations

from typing import Any

import ujson

from tests.publishing import new_key

USERS = "/api/v1/users"
PASSWORD = "correct horse battery"


async def create(server: Any, body: Any, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await server.fetch(USERS, "POST", body, headers=headers)


async def remove(server: Any, user_id: str, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await server.fetch(f"{USERS}/{user_id}", "DELETE", headers=headers)


async def test_an_admin_key_creates_a_user_who_logs_in_and_a_taken_name_is_409(make_server):
    server = await make_server()
    key = new_key(server, "platform-admin", scope="admin")
    response = await create(server, {"username": "carol", "password": PASSWORD}, key)
    assert response.code == 201, response.body
    body = ujson.loads(response.body)
    assert body["username"] == "carol" and body["canLogIn"] is True
    assert server.users.by_username("carol").user_id == body["userId"]
    login = await server.fetch("/api/auth/login", "POST", {"username": "carol", "password": PASSWORD})
    assert login.code == 200
    # A retry whose answer was lost (or another name's case): 409 with the same id, nothing created.
    again = await create(server, {"username": "CAROL", "password": PASSWORD}, key)
    assert again.code == 409
    assert ujson.loads(again.body) == {"error": {"code": "USER_EXISTS", "message": "user 'carol' already exists",
                                                 "field": "username"}, "userId": body["userId"]}
    assert len(server.users.list()) == 1


async def test_a_user_without_a_password_exists_for_publishing_but_cannot_log_in(make_server):
    server = await make_server()
    key = new_key(server, "platform-admin", scope="admin")
    response = await create(server, {"username": "dave"}, key)
    assert response.code == 201 and ujson.loads(response.body)["canLogIn"] is False
    for password in ("!", "", PASSWORD):
        login = await server.fetch("/api/auth/login", "POST", {"username": "dave", "password": password})
        assert login.code in (400, 401), login.code
    publisher = new_key(server)
    user_id = ujson.loads(response.body)["userId"]
    item = {"type": "account", "userId": user_id, "id": "a-1", "data": {
        "equity": "100.00", "buyingPower": "100.00", "cash": "100.00", "portfolioValue": "100.00",
        "dayPnl": "0.00", "dayPnlPercent": "0.00", "timestamp": "2026-01-05T15:30:00Z"}}
    published = await server.fetch("/api/v1/publish", "POST", [item], headers={"Authorization": f"Bearer {publisher}"})
    assert ujson.loads(published.body)["accepted"] == 1


async def test_bad_fields_are_400_naming_the_field_and_keys_are_checked(make_server):
    server = await make_server()
    key = new_key(server, "platform-admin", scope="admin")
    cases = [({"username": "bad name!", "password": PASSWORD}, "username"),
             ({"password": PASSWORD}, "username"),
             ({"username": "erin", "password": "short"}, "password"),
             ({"username": "erin", "password": 12345678}, "password")]
    for body, field in cases:
        response = await create(server, body, key)
        assert response.code == 400 and ujson.loads(response.body)["error"]["field"] == field, body
    assert (await create(server, ["not", "an", "object"], key)).code == 400
    assert (await create(server, {"username": "erin"}, None)).code == 401
    publisher = new_key(server)  # a publish key is not an admin key
    assert (await create(server, {"username": "erin"}, publisher)).code == 403
    assert (await remove(server, "user-000000000000", publisher)).code == 403
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"}
    assert (await server.fetch(USERS, "POST", "{}", headers=headers)).code == 415
    assert server.users.list() == []


async def test_removing_a_user_ends_their_sessions_and_closes_their_sockets(make_server):
    server = await make_server()
    key = new_key(server, "platform-admin", scope="admin")
    alice, cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    sockets = [await server.connect(cookie) for _ in range(2)]
    bobs = await server.connect(bob_cookie)
    for client in (*sockets, bobs):
        await client.subscribe("positions")
        await client.expect("snapshot")
    assert (await remove(server, alice.user_id, key)).code == 204
    for client in sockets:  # the machine-readable cause first, then 1008: clients stop, not retry
        error = await client.expect("error")
        assert error["data"]["code"] == "SESSION_EXPIRED" and error["data"]["details"]["closeCode"] == 1008
        code, _ = await client.closed()
        assert code == 1008
    assert (await server.fetch("/api/portfolio", cookie=cookie)).code == 401
    assert server.users.get(alice.user_id) is None
    assert (await remove(server, alice.user_id, key)).code == 404  # gone: a second delete is 404
    assert (await remove(server, "user-000000000000", key)).code == 404
    # Bob is untouched.
    assert (await server.fetch("/api/portfolio", cookie=bob_cookie)).code == 200
    await bobs.assert_nothing_pending()


async def test_removing_a_user_unlinks_their_broker_account_and_no_one_elses(make_server):
    # As `users remove` does: a running Alpaca feed (feeds/alpaca/linked.py) stops streaming an
    # account whose row is gone, so a removed user's broker keys are neither used nor kept.
    from portfolio_ws.auth.linked import LinkedAccountStore
    from portfolio_ws.auth.linked import new_key as new_accounts_key

    server = await make_server()
    key = new_key(server, "platform-admin", scope="admin")
    alice, _ = await server.user_session("alice")
    bob, _ = await server.user_session("bob")
    store = LinkedAccountStore(server.settings.auth.database, new_accounts_key())
    try:
        for user in (alice, bob):
            store.link(user.user_id, "keys", "AKLINKED0001", "linked-secret-value", paper=True)
        assert (await remove(server, alice.user_id, key)).code == 204
        assert [account.user_id for account in store.list()] == [bob.user_id]
    finally:
        store.close()


UNKNOWN_FIELDS = [{"username": "erin", "pasword": PASSWORD}, {"username": "erin", "admin": True},
                  {"username": "erin", "password": PASSWORD, "isAdmin": True}, {"username": "erin", "userId": "user-1"},
                  {"username": "erin", "": 1}, {"username": "erin", "Password": PASSWORD},
                  {"username": "erin", "x" * 200: None}]


async def test_an_unknown_field_is_refused_naming_it_and_nothing_is_created(make_server):
    """A misspelt ``pasword`` made a user who can never log in, answered 201 (a new user's trial)."""
    server = await make_server()
    key = new_key(server, "platform-admin", scope="admin")
    for body in UNKNOWN_FIELDS:
        response = await create(server, body, key)
        [unknown] = [name for name in body if name not in ("username", "password")]
        error = ujson.loads(response.body)["error"]
        assert response.code == 400 and error["code"] == "INVALID_REQUEST" and error["field"] == unknown, body
        assert "username, password" in error["message"], error
    assert server.users.list() == []

