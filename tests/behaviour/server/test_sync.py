"""PUT /api/v1/users/{userId}/portfolio against a real server on a real socket: the user's sockets
get a snapshot of the new state at the sync's offset, a resume from before the sync gets a snapshot,
an invalid body changes nothing and says where, and the keys' rules are publish's."""

from __future__ import annotations

import asyncio

import ujson

from tests.publishing import new_key, publish, trade_item, watching
from tests.rawhttp import closed_by_server
from tests.syncing import ACCOUNT, ORDER, POSITION, path, state, sync


async def test_a_sync_replaces_the_state_and_every_socket_of_the_user_gets_a_snapshot(make_server):
    server = await make_server()
    user_id, first = await watching(server, "alice")
    second = await server.connect(await server.login("alice"))
    await second.subscribe("positions")
    await second.expect("snapshot")
    _, bobs = await watching(server, "bob")
    key = new_key(server)
    await publish(server, [trade_item(user_id, "fill-1", "t-1")], key)
    await first.expect("trade_executed")
    response = await sync(server, user_id, state(), key)
    assert response.code == 200, response.body
    assert ujson.loads(response.body) == {"userId": user_id, "offset": 2, "positions": 1, "orders": 1, "trades": 0,
                                          "tradesKept": True}
    snapshot = await first.expect("snapshot")
    assert snapshot["seq"] == 2
    assert [p["symbol"] for p in snapshot["data"]["positions"]] == ["AAPL"]
    assert snapshot["data"]["positions"][0]["quantity"] == "100"
    assert [o["orderId"] for o in snapshot["data"]["orders"]] == ["o-1"]
    assert snapshot["data"]["account"]["equity"] == "100000.00"
    assert [t["tradeId"] for t in snapshot["data"]["trades"]] == ["t-1"]  # no trades part: kept
    only_positions = await second.expect("snapshot")
    assert only_positions["seq"] == 2 and set(only_positions["data"]) == {"positions"}
    await bobs.assert_nothing_pending()
    portfolio = ujson.loads((await server.fetch("/api/portfolio", cookie=await server.login("alice"))).body)
    assert portfolio["seq"] == 2 and portfolio["data"] == snapshot["data"]
    # Positions closed, no orders, trades replaced: an empty list clears.
    response = await sync(server, user_id, state(positions=[], orders=[], account=None, trades=[]), key)
    assert ujson.loads(response.body)["offset"] == 3
    emptied = await first.expect("snapshot")
    assert emptied["data"] == {"positions": [], "orders": [], "account": None, "trades": []}


async def test_a_resume_from_before_the_sync_gets_a_snapshot_not_a_replay(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    await publish(server, [trade_item(user_id, "fill-1", "t-1")], key)
    await client.expect("trade_executed")
    client.conn.close()
    await sync(server, user_id, state(trades=[]), key)
    await publish(server, [trade_item(user_id, "fill-2", "t-2")], key)  # offset 3
    again = await server.connect(await server.login("alice"))
    await again.subscribe("positions", "orders", "account", "trades", resume_from=1)
    resumed = await again.expect("info", "RESUMED")
    assert resumed["data"]["details"]["recovered"] is False
    snapshot = await again.expect("snapshot")
    assert snapshot["seq"] == 3 and [t["tradeId"] for t in snapshot["data"]["trades"]] == ["t-2"]
    after = await server.connect(await server.login("alice"))
    await after.subscribe("trades", resume_from=2)  # from the sync on: the events are replayed
    assert (await after.expect("trade_executed"))["data"]["tradeId"] == "t-2"
    assert (await after.expect("info", "RESUMED"))["data"]["details"]["recovered"] is True


async def test_an_invalid_body_changes_nothing_and_names_every_path(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    await sync(server, user_id, state(), key)
    await client.expect("snapshot")
    bad = state(positions=[POSITION, {**POSITION, "symbol": "MSFT", "quantity": 5}], orders=[{**ORDER, "side": "hold"}],
                account={**ACCOUNT, "cash": "lots"})
    response = await sync(server, user_id, bad, key)
    assert response.code == 400
    answer = ujson.loads(response.body)
    assert answer["error"]["code"] == "INVALID_REQUEST" and answer["error"]["field"] == "account.cash"
    assert [e["field"] for e in answer["errors"]] == ["account.cash", "orders[0].side", "positions[1].quantity"]
    assert all(e["message"] for e in answer["errors"])
    for whole in ("[", "[]", ujson.dumps({"positions": []})):
        response = await sync(server, user_id, whole, key)
        assert response.code == 400 and ujson.loads(response.body)["error"]["message"], whole
    await client.assert_nothing_pending()
    assert server.service.core.portfolio(user_id)[0] == 1  # nothing of it was taken
    assert (await sync(server, "user-000000000000", state(), key)).code == 404


async def test_keys_and_media_type_are_checked_as_for_publish(make_server):
    server = await make_server()
    user, _ = await server.user_session("alice")
    key = new_key(server)
    assert (await sync(server, user.user_id, state(), None)).code == 401
    assert (await sync(server, user.user_id, state(), "nonsense")).code == 401
    assert (await sync(server, user.user_id, state(), new_key(server, "reporting", scope="read"))).code == 403
    cookie = await server.login("alice")
    assert (await server.fetch(path(user.user_id), "PUT", state(), cookie=cookie,
                               headers={"Content-Type": "application/json"})).code == 401
    text = {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"}
    assert (await server.fetch(path(user.user_id), "PUT", state(), headers=text)).code == 415
    assert server.service.core.portfolio(user.user_id)[0] == 0


async def test_a_body_over_a_mebibyte_is_refused_413_before_it_is_read(make_server):
    server = await make_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"PUT /api/v1/users/user-000000000000/portfolio HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nAuthorization: Bearer x\r\nContent-Length: %d\r\n\r\n"
                 % (1024 * 1024 + 1))
    answer = await closed_by_server(reader, 5)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    writer.close()


async def test_the_answers_counts_are_the_rows_the_snapshot_holds(make_server):
    """A position of quantity 0 is a close: it was answered ``positions: 1`` though none was held."""
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    closed = {**POSITION, "quantity": "0", "marketValue": "0.00", "unrealizedPnl": "0.00"}
    ended = {**ORDER, "orderId": "o-old", "status": "filled", "filledQty": "5", "filledAvgPrice": "250.00",
             "submittedAt": "2026-01-02T15:30:00Z", "filledAt": "2026-01-02T15:31:00Z"}  # the Friday before
    body = state(positions=[closed, {**POSITION, "symbol": "MSFT"}], orders=[ORDER, ended],
                 trades=[{"tradeId": "t-1", "symbol": "NVDA", "side": "buy", "quantity": "1", "price": "520.50",
                          "executedAt": "2026-01-02T15:30:00Z"}])
    answer = ujson.loads((await sync(server, user_id, body, key)).body)
    snapshot = await client.expect("snapshot")
    assert [p["symbol"] for p in snapshot["data"]["positions"]] == ["MSFT"]
    assert [o["orderId"] for o in snapshot["data"]["orders"]] == ["o-1"] and snapshot["data"]["trades"] == []
    assert {k: answer[k] for k in ("positions", "orders", "trades", "tradesKept")} == {
        "positions": 1, "orders": 1, "trades": 0, "tradesKept": False}


async def test_null_parts_are_refused_with_what_to_send_instead(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    for part, hint in [("positions", "[]"), ("orders", "[]"), ("trades", "leave the part out")]:
        response = await sync(server, user_id, state(**{part: None}), key)
        answer = ujson.loads(response.body)
        assert response.code == 400 and answer["error"]["field"] == part and hint in answer["error"]["message"]
    await client.assert_nothing_pending()
    assert server.service.core.portfolio(user_id)[0] == 0


async def test_a_sync_dated_a_later_trading_day_drops_the_earlier_days_trades(make_server):
    """Documented (integration.md, section 8, "Trading days"): kept trades are the sync's day's."""
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    await publish(server, [trade_item(user_id, "fill-1", "t-1")], key)  # 2026-01-05
    await client.expect("trade_executed")
    await sync(server, user_id, state(), key)  # the same day: kept
    assert [t["tradeId"] for t in (await client.expect("snapshot"))["data"]["trades"]] == ["t-1"]
    answer = ujson.loads((await sync(server, user_id, state(account={**ACCOUNT, "timestamp": "2026-01-06T15:30:00Z"}),
                                     key)).body)
    assert answer["tradesKept"] is True
    assert (await client.expect("snapshot"))["data"]["trades"] == []
