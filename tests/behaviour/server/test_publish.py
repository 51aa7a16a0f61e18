"""POST /api/v1/publish against a real server on a real socket: keys, per-item results, retried
ids, the body limit, and published events reaching the user's WebSocket."""

from __future__ import annotations

import asyncio

import ujson

from portfolio_ws.auth.apikeys import ApiKeyStore
from tests.publishing import PUBLISH, new_key, publish, trade_ids, trade_item, watching
from tests.rawhttp import closed_by_server


async def test_a_published_trade_reaches_the_users_socket_with_its_offset(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    response = await publish(server, [trade_item(user_id, "fill-1")], key)
    assert response.code == 200, response.body
    body = ujson.loads(response.body)
    assert body == {"accepted": 1, "duplicates": 0, "rejected": 0,
                    "results": [{"index": 0, "status": "accepted", "id": "fill-1", "offset": 1}]}
    message = await client.expect("trade_executed")
    assert message["seq"] == 1 and message["userId"] == user_id
    assert message["data"]["price"] == "520.50" and message["data"]["quantity"] == "25"
    assert message["data"]["executedAt"] == "2026-01-05T15:30:00.000Z"


async def test_a_retried_id_is_never_delivered_twice(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    batch = [trade_item(user_id, "fill-1", "t-1"), trade_item(user_id, "fill-2", "t-2")]
    first = ujson.loads((await publish(server, batch, key)).body)
    again = ujson.loads((await publish(server, batch, key)).body)  # the answer was lost: the same ids again
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert [r["offset"] for r in again["results"]] == [r["offset"] for r in first["results"]] == [1, 2]
    await publish(server, [trade_item(user_id, "fill-3", "t-3")], key)
    seen = []
    while len(seen) < 3:
        message = await client.recv()
        assert message is not None
        seen += trade_ids(message)
    assert seen == ["t-1", "t-2", "t-3"]
    # The same id for another user is another item.
    bob, _ = await server.user_session("bob")
    other = ujson.loads((await publish(server, [trade_item(bob.user_id, "fill-1")], key)).body)
    assert other["results"][0]["status"] == "accepted"


async def test_invalid_items_are_rejected_by_index_and_the_valid_ones_land(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    as_number = trade_item(user_id, "b", "t-b")
    as_number["data"]["price"] = 520.5  # a float would have lost digits: a decimal string is required
    wrong_side = trade_item(user_id, "c", "t-c")
    wrong_side["data"]["side"] = "hold"
    missing = trade_item(user_id, "e", "t-e")
    del missing["data"]["executedAt"]
    batch = [trade_item(user_id, "a", "t-a"), as_number, wrong_side,
             {"type": "dividend", "userId": user_id, "id": "d", "data": {}}, missing,
             trade_item("user-000000000000", "f", "t-f"), {**trade_item(user_id, "g", "t-g"), "id": ""},
             "not an object", trade_item(user_id, "h", "t-h", price="1e999999999")]
    response = await publish(server, batch, key)
    body = ujson.loads(response.body)
    assert response.code == 200 and body["accepted"] == 1 and body["rejected"] == 8
    rejected = {r["index"]: r["field"] for r in body["results"] if r["status"] == "rejected"}
    assert rejected == {1: "data.price", 2: "data.side", 3: "type", 4: "data.executedAt", 5: "userId",
                        6: "id", 7: "", 8: "data.price"}
    assert all(r["message"] for r in body["results"] if r["status"] == "rejected")
    message = await client.expect("trade_executed")
    assert message["data"]["tradeId"] == "t-a"
    await client.assert_nothing_pending()
    # Every kind of event goes the same way.
    kinds = [
        {"type": "position", "userId": user_id, "id": "p", "data": {
            "symbol": "AAPL", "quantity": "100", "currentPrice": "176.20", "entryPrice": "170.25",
            "unrealizedPnl": "595.00", "unrealizedPnlPercent": "3.49", "marketValue": "17620.00", "side": "long"}},
        {"type": "order", "userId": user_id, "id": "o", "data": {
            "orderId": "o-1", "symbol": "TSLA", "side": "sell", "type": "limit", "status": "new", "qty": "5",
            "filledQty": "0", "limitPrice": "250.00", "submittedAt": "2026-01-05T15:30:00+00:00"}},
        {"type": "account", "userId": user_id, "id": "acc", "data": {
            "equity": "100000.00", "buyingPower": "200000.00", "cash": "50000.00", "portfolioValue": "100000.00",
            "dayPnl": "-12.50", "dayPnlPercent": "-0.01", "timestamp": "2026-01-05T15:30:00Z"}},
    ]
    body = ujson.loads((await publish(server, kinds, key)).body)
    assert body["accepted"] == 3, body


async def test_a_missing_wrong_or_revoked_key_is_401_and_a_key_without_the_scope_403(make_server):
    server = await make_server()
    user, _ = await server.user_session("alice")
    items = [trade_item(user.user_id, "x")]
    key = new_key(server)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for wrong in (None, "", "nonsense", forged):
        response = await publish(server, items, wrong)
        assert response.code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer"), wrong
    # A session cookie is no key: browsers never publish.
    cookie = await server.login("alice")
    assert (await server.fetch(PUBLISH, "POST", items, cookie=cookie)).code == 401
    reader = new_key(server, "reporting", scope="read")
    assert (await publish(server, items, reader)).code == 403
    store = ApiKeyStore(server.settings.auth.database)
    assert store.revoke("platform")
    store.close()
    assert (await publish(server, items, key)).code == 401
    assert server.service.core.portfolio(user.user_id)[0] == 0  # nothing of it was taken


async def test_whole_batches_that_cant_be_taken_get_one_clear_answer(make_server):
    server = await make_server()
    user, _ = await server.user_session("alice")
    key = new_key(server)
    assert (await publish(server, [trade_item(user.user_id, str(i), f"t{i}") for i in range(501)], key)).code == 400
    assert (await publish(server, [], key)).code == 400
    assert (await publish(server, {"type": "trade"}, key)).code == 400
    assert (await publish(server, "[{", key)).code == 400
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"}
    assert (await server.fetch(PUBLISH, "POST", "[]", headers=headers)).code == 415
    full = [trade_item(user.user_id, str(i), f"t{i}") for i in range(500)]
    assert ujson.loads((await publish(server, full, key)).body)["accepted"] == 500


async def test_a_body_over_a_mebibyte_is_refused_413_before_it_is_read(make_server):
    server = await make_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer x\r\nContent-Length: %d\r\n\r\n" % (1024 * 1024 + 1))
    answer = await closed_by_server(reader, 5)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    writer.close()
