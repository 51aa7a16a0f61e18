"""The local Alpaca itself: what it answers must be what alpaca-py's own models and streams accept,
or the feed tests would prove nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import msgpack
import websockets
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import GetOrdersRequest

from tests.alpaca_server import AlpacaTestServer

KEY, SECRET = "AKTEST", "test-secret"


async def started() -> AlpacaTestServer:
    server = AlpacaTestServer()
    account = server.add_account(KEY, SECRET, cash="1000")
    account.set_position("AAPL", qty="10", avg_entry="150", price="155")
    account.set_position("TSLA", qty="-3", avg_entry="250", price="240")
    await server.start()
    return server


async def test_rest_answers_validate_as_alpaca_py_models(io_loop):
    server = await started()
    try:
        fill = server.trade(KEY, "AAPL", "buy", "2", "156.5", push=False)
        server.place_order(KEY, "MSFT", "buy", "1", type_="limit", limit_price="300", push=False)
        client = TradingClient(KEY, SECRET, url_override=server.rest_url)  # parsed models, not raw
        loop = asyncio.get_running_loop()
        account = await loop.run_in_executor(None, client.get_account)
        assert account.cash == "687" and account.equity == "1845"  # 687 + 12 * 156.5 - 3 * 240
        positions = await loop.run_in_executor(None, client.get_all_positions)
        assert [(p.symbol, p.qty, p.side.value) for p in positions] == [("AAPL", "12", "long"), ("TSLA", "-3", "short")]
        open_orders = await loop.run_in_executor(
            None, client.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN))
        assert [o.symbol for o in open_orders] == ["MSFT"]
        closed = await loop.run_in_executor(None, client.get_orders, GetOrdersRequest(
            status=QueryOrderStatus.CLOSED, after=datetime(2000, 1, 1, tzinfo=timezone.utc)))
        assert [str(o.id) for o in closed] == [fill["order"]["id"]]
        clock = await loop.run_in_executor(None, client.get_clock)
        assert clock.is_open is True
        assert TradeUpdate(**fill).execution_id is not None  # the stream payload is a valid model too

        server.fail_rest(KEY, 406, times=1)
        bad = TradingClient(KEY, "wrong", url_override=server.rest_url)
        for call, status in ((client.get_account, 406), (bad.get_account, 401)):
            try:
                await loop.run_in_executor(None, call)
            except APIError as exc:
                assert exc.status_code == status
            else:
                raise AssertionError("expected an APIError")
    finally:
        await server.stop()


async def test_trading_stream_accepts_both_auth_forms_and_refuses_bad_keys(io_loop):
    server = await started()
    try:
        for auth in ({"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}},
                     {"action": "auth", "key": KEY, "secret": SECRET}):
            async with websockets.connect(server.trading_url) as ws:
                await ws.send(json.dumps(auth))
                assert json.loads(await ws.recv())["data"]["status"] == "authorized"
                await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
                assert json.loads(await ws.recv()) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
                data = server.trade(KEY, "AAPL", "sell", "1", "160")
                assert json.loads(await ws.recv())["data"]["order"]["status"] == "new"
                assert json.loads(await ws.recv()) == {"stream": "trade_updates", "data": data}
        server.refuse(KEY)
        async with websockets.connect(server.trading_url) as ws:
            await ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
            assert json.loads(await ws.recv())["data"]["status"] == "unauthorized"
        assert server.trading_refusals[KEY] == 1
    finally:
        await server.stop()


async def test_data_stream_speaks_msgpack_with_timestamps(io_loop):
    server = await started()
    try:
        async with websockets.connect(server.data_url) as ws:
            assert msgpack.unpackb(await ws.recv()) == [{"T": "success", "msg": "connected"}]
            await ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
            assert msgpack.unpackb(await ws.recv()) == [{"T": "success", "msg": "authenticated"}]
            async with websockets.connect(server.data_url) as second:  # one connection per key
                await second.recv()
                await second.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
                assert msgpack.unpackb(await second.recv())[0]["code"] == 406
            await ws.send(msgpack.packb({"action": "subscribe", "trades": ["AAPL"]}))
            assert msgpack.unpackb(await ws.recv())[0]["trades"] == ["AAPL"]
            assert server.push_price("AAPL", 155.25) == 1 and server.push_price("MSFT", 1) == 0
            [trade] = msgpack.unpackb(await ws.recv())
            assert (trade["T"], trade["S"], trade["p"]) == ("t", "AAPL", 155.25)
            assert isinstance(trade["t"], msgpack.Timestamp)
        async with websockets.connect(server.data_url) as ws:
            await ws.recv()
            await ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": "wrong"}))
            assert msgpack.unpackb(await ws.recv()) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        await server.wait_for(lambda: not server.data_conns, what="connections gone")
    finally:
        await server.stop()
