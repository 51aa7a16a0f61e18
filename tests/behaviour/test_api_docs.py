"""The AsyncAPI and OpenAPI documents against real traffic: every message a real server sends in a
scenario, and every HTTP response, must validate against the schemas the documents give for it.

The documents are fetched from the server (``GET /api/docs/...``), so serving them is tested too.
Each server message must match exactly one of the messages the channel lists, and every message
the channel lists must be seen at least once: the documents can neither be vacuous nor go stale.
"""

from __future__ import annotations


import dataclasses
from typing import Any

import jsonschema
import pytest
import ujson
import yaml

from portfolio_ws import constants as c
from portfolio_ws.auth.apikeys import ApiKeyStore
from tests import ROOT
from tests.builders import account, order, position, trade
from tests.harness import PASSWORD, Client
from tests.apidocs import TOKEN, Docs, fetch_docs

LONG_WINDOW = 600_000


class CheckedClient:
    """A harness client whose every sent and received message is checked against the AsyncAPI doc."""

    def __init__(self, client: Client, docs: Docs) -> None:
        self.client, self.docs = client, docs

    async def send(self, message: Any, valid: bool = True) -> None:
        if isinstance(message, dict):
            assert self.docs.client_message(message) is valid, message
        await self.client.send(message)

    async def expect(self, type_: str, code: str | None = None) -> dict[str, Any]:
        msg = await self.client.expect(type_, code)
        self.docs.server_message(msg)
        if msg["type"] == "error":
            self.docs.error_codes.add(msg["data"]["code"])
        return msg


# ---- the documents themselves ----------------------------------------------------------------
def test_the_documents_declare_their_versions_and_every_schema_is_valid_json_schema():
    asyncapi = yaml.safe_load((ROOT / "portfolio_ws/apidocs/asyncapi.yaml").read_text())
    openapi = yaml.safe_load((ROOT / "portfolio_ws/apidocs/openapi.yaml").read_text())
    assert asyncapi["asyncapi"] == "2.6.0" and openapi["openapi"] == "3.1.0"
    for name, schema in asyncapi["components"]["schemas"].items():
        jsonschema.Draft7Validator.check_schema(schema)
    for name, schema in openapi["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    assert set(openapi["paths"]) >= {"/api/auth/login", "/api/auth/logout", "/api/auth/me", "/api/portfolio",
                                     "/api/health", "/api/admin/websocket-stats", "/api/v1/publish",
                                     "/api/v1/users", "/api/v1/users/{userId}", "/api/v1/users/{userId}/portfolio"}


def test_the_close_codes_are_those_of_constants():
    asyncapi = yaml.safe_load((ROOT / "portfolio_ws/apidocs/asyncapi.yaml").read_text())
    documented = {(row["code"], row["reason"]): row for row in asyncapi["x-close-codes"]}
    sent = {v for v in vars(c).values() if isinstance(v, c.Close)} | {c.user_limit_close(5)}
    for close in sent:
        row = documented.get((close.code, close.reason))
        assert row is not None, f"{close} is not in x-close-codes"
        assert row["cause"] == close.cause, close
        assert row["reconnect"] is close.client_should_reconnect, close
    # Every row is what the close-policy table says, for a client that saw the cause first (or, for
    # causes never announced, only the close code): both give the same answer.
    for (code, _), row in documented.items():
        unannounced = row["cause"] is None or row["cause"] in c.UNANNOUNCED_CAUSES
        for cause in {row["cause"], None} if unannounced else {row["cause"]}:
            rule = c.close_policy(code, cause)
            assert (row["reconnect"], row["delay"], row["poll"]) == (rule.reconnect, rule.delay, rule.poll), row
    assert {row["cause"] for row in documented.values()} - {None} == set(c.CloseCause)
    announced = asyncapi["components"]["schemas"]["CloseCauseError"]["properties"]["code"]["enum"]
    assert set(announced) == set(c.CloseCause) - c.UNANNOUNCED_CAUSES


# ---- WebSocket traffic -----------------------------------------------------------------------
async def test_every_message_a_real_server_sends_matches_the_asyncapi_document(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW, recovery__max_events=3)
    docs = await fetch_docs(server)
    user, cookie = await server.user_session("alice")
    uid = user.user_id

    ws = CheckedClient(await server.connect(cookie, expect_connected=False), docs)
    await ws.expect("info", c.CONNECTED)
    await ws.send({"type": "subscribe", "channels": ["orders"]})
    await ws.expect("info", c.SUBSCRIBED)
    await ws.expect("snapshot")                                      # empty, one channel
    await ws.send({"type": "subscribe", "channels": list(c.CHANNELS)})
    await ws.expect("info", c.SUBSCRIBED)
    snap = await ws.expect("snapshot")                               # the added channels, account null
    assert snap["data"]["account"] is None

    server.publish(order(uid, "order-1", "new"))
    await ws.expect("order_update")
    server.publish(trade(uid, "trade-1", pnl=None))
    await ws.expect("trade_executed")
    server.publish(position(uid, "SNDL", "1500", "0.4567", "0.5123"))
    server.service.flush()
    await ws.expect("position_update")
    server.publish(account(uid))
    server.service.flush()
    await ws.expect("account_update")
    server.publish(position(uid, "SNDL", "0", "0.4612", "0.5123"))  # closed
    server.publish(position(uid, "AAPL", "100"))
    server.publish(account(uid, "104380.15"))
    server.publish(dataclasses.replace(order(uid, "order-2", "filled", filled="50", avg="245.75"),
                                       stop_price=position(uid).current_price))
    batch = await ws.expect("batch")
    assert set(batch["data"]) == {"positions", "orders", "account"}

    await ws.send({"type": "ping"})
    await ws.expect("pong")
    await ws.send({"type": "unsubscribe", "channels": ["trades"]})
    await ws.expect("info", c.UNSUBSCRIBED)
    for bad in ("not json", b"binary", "[1]", '{"type": 5}', '{"type": "subscribe"}',
                '{"type": "subscribe", "channels": ["orders"], "resumeFrom": -1}'):
        await ws.send(bad)
        await ws.expect("error")
    await ws.send({"type": "hello"}, valid=False)
    await ws.expect("error")
    await ws.send({"type": "subscribe", "channels": ["invalid_channel"]}, valid=False)
    assert (await ws.expect("error"))["data"]["code"] == c.SUBSCRIPTION_FAILED
    await ws.send({"type": "subscribe", "channels": []}, valid=False)
    await ws.expect("error")

    # Resume: recovered (a replay, then RESUMED), and not recovered (RESUMED, then a snapshot).
    last = batch["seq"]
    ws.client.close()
    server.publish(order(uid, "order-3", "accepted"))
    again = CheckedClient(await server.connect(cookie, expect_connected=False), docs)
    await again.expect("info", c.CONNECTED)
    await again.send({"type": "subscribe", "channels": list(c.CHANNELS), "resumeFrom": last})
    await again.expect("info", c.SUBSCRIBED)
    await again.expect("order_update")
    assert (await again.expect("info", c.RESUMED))["data"]["details"]["recovered"] is True
    third = CheckedClient(await server.connect(cookie, expect_connected=False), docs)
    await third.expect("info", c.CONNECTED)
    await third.send({"type": "subscribe", "channels": list(c.CHANNELS), "resumeFrom": 1})
    await third.expect("info", c.SUBSCRIBED)
    assert (await third.expect("info", c.RESUMED))["data"]["details"]["recovered"] is False
    full = await third.expect("snapshot")
    assert set(full["data"]) == set(c.CHANNELS) and full["data"]["account"] is not None

    # RATE_LIMITED, from a server with a tiny budget.
    strict = await make_server(limits__messages_per_second=1, limits__rate_limit_burst=1)
    _, strict_cookie = await strict.user_session("bob")
    limited = CheckedClient(await strict.connect(strict_cookie, expect_connected=False), docs)
    await limited.expect("info", c.CONNECTED)
    await limited.send({"type": "ping"})
    await limited.send({"type": "ping"})
    await limited.expect("pong")
    assert (await limited.expect("error"))["data"]["code"] == c.RATE_LIMITED

    assert docs.seen == set(docs.server_messages), f"never seen: {set(docs.server_messages) - docs.seen}"
    assert docs.error_codes == {c.INVALID_JSON, c.INVALID_MESSAGE, c.UNKNOWN_MESSAGE_TYPE, c.SUBSCRIPTION_FAILED,
                                c.RATE_LIMITED}


async def test_the_documents_reject_what_the_protocol_forbids(make_server):
    server = await make_server()
    docs = await fetch_docs(server)
    good = {"type": "position_update", "timestamp": "2026-01-05T15:00:02.173Z", "userId": "user-1", "seq": 5,
            "data": {"symbol": "TSLA", "quantity": "20", "currentPrice": "242.10", "entryPrice": "250.00",
                     "unrealizedPnl": "158.00", "unrealizedPnlPercent": "3.16", "marketValue": "4842.00",
                     "side": "short", "strategyId": None, "openedAt": None}}
    assert docs.server_message(good) == "positionUpdate"
    bad_values = [("currentPrice", 242.1), ("currentPrice", "242.1000"), ("currentPrice", "242.1"),
                  ("quantity", "20.0"), ("quantity", "-20"), ("unrealizedPnl", "-0.00"), ("entryPrice", "250.001"),
                  ("marketValue", "0.5"), ("marketValue", "-4842.00"), ("side", "flat"),
                  ("openedAt", "2026-01-05T15:00:00Z")]
    for field, value in bad_values:
        with pytest.raises(AssertionError):
            docs.server_message({**good, "data": {**good["data"], field: value}})
    for broken in ({k: v for k, v in good.items() if k != "seq"}, {**good, "extra": 1},
                   {"type": "info", "timestamp": good["timestamp"], "userId": "u", "seq": 1,
                    "data": {"code": "SUBSCRIBED", "message": "", "details": {"channels": []}}}):
        with pytest.raises(AssertionError):
            docs.server_message(broken)


# ---- HTTP traffic ----------------------------------------------------------------------------
async def test_every_http_response_matches_the_openapi_document(make_server):
    server = await make_server(auth__admin_token=TOKEN, auth__login_failures_per_user_address=2,
                               streaming__batch_window_ms=LONG_WINDOW)
    docs = await fetch_docs(server)
    user = server.add_user("alice")
    server.add_user("root", admin=True)
    server.add_user("mallory")

    async def call(path: str, method: str = "GET", **kwargs: Any) -> Any:
        response = await server.fetch(path, method, **kwargs)
        docs.http(path, method, response)
        return response

    login = await call("/api/auth/login", "POST", body={"username": "alice", "password": PASSWORD})
    assert login.code == 200
    cookie = login.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    assert (await call("/api/auth/login", "POST", body="{nope")).code == 400
    assert (await call("/api/auth/login", "POST", body={"username": "alice"})).code == 400
    assert (await call("/api/auth/login", "POST", body={"username": "alice", "password": "x", "otp": "1"})).code == 400
    assert (await call("/api/auth/login", "POST", body="x" * 5000)).code == 413
    for _ in range(2):
        assert (await call("/api/auth/login", "POST", body={"username": "mallory", "password": "guess"})).code == 401
    assert (await call("/api/auth/login", "POST", body={"username": "mallory", "password": "guess"})).code == 429

    assert (await call("/api/auth/me", cookie=cookie)).code == 200
    assert (await call("/api/auth/me")).code == 401
    assert ujson.loads((await call("/api/auth/session")).body) == {"loggedIn": False}
    assert ujson.loads((await call("/api/auth/session", cookie=cookie)).body)["loggedIn"] is True
    assert (await call("/api/portfolio")).code == 401
    assert (await call("/api/portfolio", cookie=cookie)).code == 200       # empty: account null
    for event in (position(user.user_id, "AAPL"), position(user.user_id, "SNDL", "10", "0.4567", "0.5123"),
                  order(user.user_id), account(user.user_id), trade(user.user_id)):
        server.publish(event)
    full = await call("/api/portfolio", cookie=cookie)
    assert ujson.loads((await call("/api/portfolio/equity", cookie=cookie)).body)["points"]
    assert (await call("/api/portfolio/equity")).code == 401
    assert ujson.loads(full.body)["data"]["account"] is not None
    assert (await call("/api/health")).code == 200

    assert (await call("/api/admin/websocket-stats")).code == 401
    assert (await call("/api/admin/websocket-stats", cookie=cookie)).code == 403
    assert (await call("/api/admin/websocket-stats", headers={"Authorization": "Bearer wrong"})).code == 401
    ws = await server.connect(cookie)
    await ws.subscribe(*c.CHANNELS)
    await ws.expect("snapshot")
    server.publish(order(user.user_id, "order-2"))
    await ws.expect("order_update")
    stats = await call("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert stats.code == 200 and ujson.loads(stats.body)["performance"]["latencyMs"]["samples"] == 1
    root = await server.login("root")
    assert (await call("/api/admin/websocket-stats", cookie=root)).code == 200

    key = ApiKeyStore(server.settings.auth.database).add("platform", ["publish"])[1]
    reader = ApiKeyStore(server.settings.auth.database).add("reporting", ["read"])[1]
    bearer = {"Authorization": f"Bearer {key}"}
    good = {"type": "trade", "userId": user.user_id, "id": "fill-1", "data": {
        "tradeId": "fill-1", "symbol": "NVDA", "side": "buy", "quantity": "25", "price": "520.50",
        "executedAt": "2026-01-05T15:30:00.000Z", "pnl": None}}
    bad = {**good, "id": "fill-2", "data": {**good["data"], "price": 520.5}}
    published = await call("/api/v1/publish", "POST", body=[good, bad, good, "x"], headers=bearer)
    assert [r["status"] for r in ujson.loads(published.body)["results"]] == ["accepted", "rejected", "duplicate",
                                                                           "rejected"]
    assert (await call("/api/v1/publish", "POST", body=[good])).code == 401
    assert (await call("/api/v1/publish", "POST", body=[good], headers={"Authorization": f"Bearer {reader}"})).code == 403
    assert (await call("/api/v1/publish", "POST", body=[], headers=bearer)).code == 400
    assert (await call("/api/v1/publish", "POST", body="[", headers=bearer)).code == 400
    assert (await call("/api/v1/publish", "POST", body="[]",
                       headers={**bearer, "Content-Type": "text/plain"})).code == 415
    assert (await call("/api/v1/publish", "POST", body="[" + " " * (1024 * 1024) + "]", headers=bearer)).code == 413

    portfolio = f"/api/v1/users/{user.user_id}/portfolio"
    as_json = {"Content-Type": "application/json"}
    state = {"account": None, "positions": [], "orders": [{**good["data"], "tradeId": None}]}
    assert (await call(portfolio, "PUT", body={**state, "orders": []}, headers={**bearer, **as_json})).code == 200
    refused = await call(portfolio, "PUT", body=state, headers={**bearer, **as_json})
    assert refused.code == 400 and ujson.loads(refused.body)["error"]["field"] == "orders[0].tradeId"
    assert (await call(portfolio, "PUT", body="{", headers={**bearer, **as_json})).code == 400
    assert (await call(portfolio, "PUT", body=state, headers=as_json)).code == 401
    assert (await call(portfolio, "PUT", body=state, headers={"Authorization": f"Bearer {reader}", **as_json})).code == 403
    assert (await call("/api/v1/users/user-000000000000/portfolio", "PUT", body=state,
                       headers={**bearer, **as_json})).code == 404
    assert (await call(portfolio, "PUT", body="{}", headers={**bearer, "Content-Type": "text/plain"})).code == 415
    assert (await call(portfolio, "PUT", body="{" + " " * (1024 * 1024) + "}", headers={**bearer, **as_json})).code == 413

    admin_key = {"Authorization": "Bearer " + ApiKeyStore(server.settings.auth.database).add("ops", ["admin"])[1]}
    created = await call("/api/v1/users", "POST", body={"username": "carol", "password": PASSWORD}, headers=admin_key)
    assert created.code == 201
    assert (await call("/api/v1/users", "POST", body={"username": "dave"}, headers=admin_key)).code == 201
    assert (await call("/api/v1/users", "POST", body={"username": "Carol"}, headers=admin_key)).code == 409
    assert (await call("/api/v1/users", "POST", body={"username": "x y"}, headers=admin_key)).code == 400
    assert (await call("/api/v1/users", "POST", body={"username": "erin", "pasword": PASSWORD}, headers=admin_key)).code == 400
    assert (await call("/api/v1/users", "POST", body="[", headers=admin_key)).code == 400
    assert (await call("/api/v1/users", "POST", body={"username": "erin"})).code == 401
    assert (await call("/api/v1/users", "POST", body={"username": "erin"}, headers=bearer)).code == 403
    assert (await call("/api/v1/users", "POST", body="{}", headers={**admin_key, "Content-Type": "text/plain"})).code == 415
    assert (await call("/api/v1/users", "POST", body="x" * 5000, headers=admin_key)).code == 413
    carol = "/api/v1/users/" + ujson.loads(created.body)["userId"]
    assert (await call(carol, "DELETE")).code == 401
    assert (await call(carol, "DELETE", headers=bearer)).code == 403
    assert (await call(carol, "DELETE", headers=admin_key)).code == 204
    assert (await call(carol, "DELETE", headers=admin_key)).code == 404

    assert (await call("/api/nothing-here")).code == 404
    assert (await call("/api/auth/login")).code == 405
    assert (await call("/api/auth/logout", "POST", cookie=cookie)).code == 200
    assert (await call("/api/auth/logout", "POST")).code == 200

    disabled = await make_server(streaming__enabled=False)
    docs.http("/api/health", "GET", await disabled.fetch("/api/health"))
    docs.http("/api/admin/websocket-stats", "GET",
              await disabled.fetch("/api/admin/websocket-stats", cookie=await disabled.login(
                  disabled.add_user("admin", admin=True).username)))
