"""What a published item's and a sync's fields may hold, against a real server on a real socket: a
new user's trial found Python's lenient ``Decimal()`` taking "1_000", " 1", "1e5", "NaN", Arabic-Indic
or full-width digits, negative quantities and prices of zero, "<script>" or "A\\u0000" as symbols.
Each is now refused naming its field, the valid items beside it land, and nothing of a refused
sync changes the user's state or reaches a socket (the rules: docs/integration.md, section 3)."""

from __future__ import annotations

from typing import Any

import pytest
import ujson

from tests.publishing import new_key, publish, watching
from tests.syncing import ACCOUNT, ORDER, POSITION, state, sync

TRADE = {"tradeId": "t-1", "symbol": "NVDA", "side": "buy", "quantity": "25", "price": "520.50",
         "executedAt": "2026-01-05T15:30:00.000Z", "pnl": "12.00", "strategyId": "s-1"}
DATA = {"trade": TRADE, "position": POSITION, "order": ORDER, "account": ACCOUNT}

LOOSE = ["1_000", " 1", "1 ", "+5", ".5", "5.", "1e5", "1E-5", "NaN", "Infinity", "-Infinity", "007", "1,5", "0x1A",
         "\u0661\u0662", "\uff11\uff12", "\u0967", "1\u00a0", ""]
# (type, field, value): every decimal field of every type with each loose spelling, then the ranges.
DECIMAL_CASES = [(kind, field, value) for kind, data in DATA.items()
                 for field in data if field not in ("symbol", "side", "type", "status", "orderId", "tradeId",
                                                    "strategyId", "executedAt", "submittedAt", "timestamp")
                 for value in LOOSE]
RANGE_CASES = [("trade", "quantity", "-1"), ("trade", "quantity", "0"), ("trade", "quantity", "-0"),
               ("trade", "price", "0"), ("trade", "price", "-520.50"), ("position", "quantity", "-100"),
               ("position", "marketValue", "-17620.00"), ("position", "currentPrice", "-1.00"),
               ("position", "entryPrice", "-170.25"), ("order", "qty", "-5"), ("order", "filledQty", "-1"),
               ("order", "filledQty", "6"), ("order", "limitPrice", "0"), ("order", "limitPrice", "-250.00")]
SYMBOL_CASES = [(kind, "symbol", value) for kind in ("trade", "position", "order")
                for value in ["<script>", "A\u0000", "", "aapl", "Aapl", "A" * 33, " AAPL", "AAPL ", "AA PL",
                              "\uff21\uff21\uff30\uff2c", ".B", "AAPL\n", "AAPL\u200b"]]
TEXT_CASES = [("trade", field, value) for field in ("tradeId", "strategyId")
              for value in ["t\u0000", "t\n1", "t\u202e1", "t\u200b1", "\u0007"]]
TIME_CASES = [("trade", "executedAt", value) for value in
              ["2026-01-05 15:30:00Z", "2026-01-05T15:30Z", "20260105T153000Z", "2026-W02-1T15:30:00Z",
               "2026-01-05T15:30:00+0530", "2026-01-05T15:30:00"]]
CASES = DECIMAL_CASES + RANGE_CASES + SYMBOL_CASES + TEXT_CASES + TIME_CASES


def item(user_id: str, index: int, kind: str, field: str, value: Any) -> dict[str, Any]:
    data = {**DATA[kind], field: value}
    if kind == "trade":
        data["tradeId"] = data["tradeId"] if field == "tradeId" else f"t-{index}"
    return {"type": kind, "userId": user_id, "id": f"item-{index}", "data": data}


async def test_every_loose_or_out_of_range_field_is_rejected_by_name_and_the_good_items_land(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    batch = [item(user_id, n, *case) for n, case in enumerate(CASES)]
    good = {"type": "trade", "userId": user_id, "id": "good", "data": {**TRADE, "tradeId": "t-good",
                                                                         "symbol": "BRK.B", "quantity": "0.5"}}
    for start in range(0, len(batch), 400):  # a request holds at most 500
        chunk = batch[start:start + 400] + ([good] if start == 0 else [])
        response = await publish(server, chunk, key)
        assert response.code == 200, response.body
        results = ujson.loads(response.body)["results"]
        for offset, (result, case) in enumerate(zip(results, CASES[start:start + 400])):
            assert result["status"] == "rejected" and result["field"] == f"data.{case[1]}", (case, result)
            assert result["message"], case
        if start == 0:
            assert results[-1]["status"] == "accepted", results[-1]
    message = await client.expect("trade_executed")
    assert message["data"]["tradeId"] == "t-good" and message["data"]["symbol"] == "BRK.B"
    assert message["data"]["quantity"] == "0.5"
    await client.assert_nothing_pending()


async def test_what_alpaca_writes_is_taken(make_server):
    """Crypto pairs, class shares, option contracts, fractional and tiny quantities, "-0" P&L."""
    server = await make_server()
    user_id, client = await watching(server, "alice", "trades")
    key = new_key(server)
    spellings = [("BTC/USD", "0.000123", "97123.45", "-0.00"), ("BRK.B", "1.5", "450.10", "-3.25"),
                 ("AAPL240119C00150000", "2", "3.50", None), ("ETHUSD", "10", "0.05", "0")]
    items = [{"type": "trade", "userId": user_id, "id": f"i-{n}",
              "data": {**TRADE, "tradeId": f"t-{n}", "symbol": symbol, "quantity": quantity, "price": price,
                       "pnl": pnl}} for n, (symbol, quantity, price, pnl) in enumerate(spellings)]
    body = ujson.loads((await publish(server, items, key)).body)
    assert body["accepted"] == 4, body
    trades = []
    while len(trades) < 4:
        message = await client.recv()
        trades += message["data"]["trades"] if message["type"] == "batch" else [message["data"]]
    assert [(t["symbol"], t["quantity"], t["pnl"]) for t in trades] == [
        ("BTC/USD", "0.000123", "0.00"), ("BRK.B", "1.5", "-3.25"), ("AAPL240119C00150000", "2", None),
        ("ETHUSD", "10", "0.00")]


@pytest.mark.parametrize("kind,field,value", [case for case in CASES if case[0] != "trade" or case[1] != "tradeId"][::7])
async def test_a_sync_holding_one_bad_field_changes_nothing_and_names_its_path(make_server, kind, field, value):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    assert (await sync(server, user_id, state(), key)).code == 200
    await client.expect("snapshot")
    part = {"trade": "trades", "position": "positions", "order": "orders", "account": "account"}[kind]
    element = {**DATA[kind], field: value}
    body = state(**{part: element if part == "account" else [element]})
    response = await sync(server, user_id, body, key)
    assert response.code == 400, (kind, field, value, response.body)
    answer = ujson.loads(response.body)
    path = f"account.{field}" if part == "account" else f"{part}[0].{field}"
    assert answer["error"]["field"] == path and [e["field"] for e in answer["errors"]] == [path]
    assert answer["error"]["message"].startswith(f"{path}: ")
    await client.assert_nothing_pending()
    assert server.service.core.portfolio(user_id)[0] == 1


NOT_STRICT_JSON = ['[{"type": "trade", "type": "order"}]', '[NaN]', '[01]', '[1e999]', '{"a": 1, "a": 1}',
                   b'[\xff]', '[{"data": {"price": "1", "price": "2"}}]']


@pytest.mark.parametrize("body", NOT_STRICT_JSON)
async def test_a_body_that_is_not_strict_json_is_refused_on_every_route(make_server, body):
    """A name twice in one object is read differently by different parsers (ujson took the last)."""
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    admin = new_key(server, "platform-admin", scope="admin")
    bearer = {"Content-Type": "application/json"}
    calls = [("/api/v1/publish", "POST", key), (f"/api/v1/users/{user_id}/portfolio", "PUT", key),
             ("/api/v1/users", "POST", admin), ("/api/auth/login", "POST", None)]
    for path, method, with_key in calls:
        headers = {**bearer, **({"Authorization": f"Bearer {with_key}"} if with_key else {})}
        response = await server.fetch(path, method, body, headers=headers)
        error = ujson.loads(response.body)["error"]
        assert response.code == 400 and error["code"] == "INVALID_JSON", (path, response.body)
    await client.assert_nothing_pending()
    assert len(server.users.list()) == 1
