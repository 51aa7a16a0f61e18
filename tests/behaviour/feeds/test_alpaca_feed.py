"""The Alpaca feed end to end on the bus: the real alpaca-py against the local Alpaca."""

from __future__ import annotations

import pytest

import asyncio
import logging
from decimal import Decimal
from typing import Callable

import msgpack

from portfolio_ws.core import wire
from portfolio_ws.core.events import AccountUpdate, OrderUpdate, PositionUpdate, TradeExecuted
from tests.alpaca_server import AlpacaTestServer
from tests.behaviour.feeds.alpaca_env import USERS, alpaca_env

D = Decimal


def _is(kind: type, user: str, **fields: object) -> Callable[[object], bool]:
    """Matches events of ``kind`` for ``user`` whose named fields equal the given values."""

    def match(event: object) -> bool:
        return isinstance(event, kind) and getattr(event, "user_id") == user and all(
            getattr(event, k) == v for k, v in fields.items()
        )

    return match


async def test_start_publishes_each_users_portfolio(io_loop):
    async with alpaca_env() as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        aapl = await env.events.first(0, _is(PositionUpdate, "alice", symbol="AAPL"))
        assert (aapl.quantity, aapl.side, aapl.entry_price, aapl.current_price) == (D(10), "long", D(150), D(155))
        assert aapl.unrealized_pnl == D(50) and aapl.market_value == D(1550)
        assert wire.percent(aapl.unrealized_pnl_percent) == "3.33"
        short = await env.events.first(0, _is(PositionUpdate, "bob", symbol="AAPL"))
        assert (short.quantity, short.side, short.unrealized_pnl, short.market_value) == (D(5), "short", D(125), D(775))
        account = await env.events.first(0, _is(AccountUpdate, "bob"))
        # cash 25000 - 775 (short) + 3 * 520.5
        assert account.equity == D("25786.5") and account.day_pnl == D("1786.5")
        assert wire.percent(account.day_pnl_percent) == "7.44"
        health = env.feed.health()
        assert health.connected and health.source == "alpaca" and health.market_open
        assert health.details["accounts"]["alice"]["trading"]["connected"]
        assert health.details["data"]["symbols"] == 3


async def test_fill_reaches_the_bus_as_order_trade_position_and_account(io_loop):
    async with alpaca_env() as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        key = env.key("alice")
        mark = env.events.mark()
        fill = env.server.trade(key, "AAPL", "buy", "5", "160.10")
        trade = await env.events.first(mark, _is(TradeExecuted, "alice"), "alice's trade")
        assert (trade.trade_id, trade.symbol, trade.side, trade.quantity, trade.price, trade.pnl) == (
            fill["execution_id"], "AAPL", "buy", D(5), D("160.10"), None)
        events = env.events.since(mark, "alice")
        kinds = [type(e).__name__ for e in events]
        assert kinds[:5] == ["OrderUpdate", "OrderUpdate", "TradeExecuted", "PositionUpdate", "AccountUpdate"], kinds
        new, filled = events[0], events[1]
        assert (new.status, filled.status) == ("new", "filled")
        assert filled.filled_qty == D(5) and filled.filled_avg_price == D("160.10") and filled.qty == D(5)
        assert filled.broker_order_id == fill["order"]["id"] and filled.order_id == fill["order"]["client_order_id"]
        assert trade.order_id == filled.order_id
        position = events[3]
        assert position.quantity == D(15) and position.current_price == D("160.10")
        assert wire.money(position.entry_price) == "153.37"  # (10 * 150 + 5 * 160.10) / 15
        account = events[4]
        assert account.cash == D("10000") - D("800.50") and account.equity == account.cash + 15 * D("160.10")
        assert wire.money(account.equity) == "11601.00"

        # Selling part of it realizes P&L against the tracked average entry.
        mark = env.events.mark()
        env.server.trade(key, "AAPL", "sell", "3", "170")
        sale = await env.events.first(mark, _is(TradeExecuted, "alice"), "alice's sale")
        assert wire.money(sale.pnl) == "49.90"  # 3 * (170 - 153.3666...)
        position = await env.events.first(mark, _is(PositionUpdate, "alice", symbol="AAPL"))
        assert position.quantity == D(12)
        assert not env.events.since(mark, "bob") and not env.events.since(mark, "carol")


async def test_a_price_tick_updates_every_holder_and_no_one_else(io_loop):
    async with alpaca_env() as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        mark = env.events.mark()
        assert env.server.push_price("AAPL", 187.3) == 1  # a msgpack float
        alice = await env.events.first(mark, _is(PositionUpdate, "alice", symbol="AAPL"))
        bob = await env.events.first(mark, _is(PositionUpdate, "bob", symbol="AAPL"))
        assert alice.current_price == bob.current_price == D("187.3")
        assert (alice.unrealized_pnl, alice.market_value) == (D("373.0"), D("1873.0"))  # (187.3 - 150) * 10
        assert (bob.unrealized_pnl, bob.market_value) == (D("-36.5"), D("936.5"))  # short 5 from 180: a loss; value unsigned
        assert wire.percent(bob.unrealized_pnl_percent) == "-4.06"
        account = await env.events.first(mark, _is(AccountUpdate, "bob"))
        assert account.equity == D(25000) - D("936.5") + 3 * D("520.5")
        await env.events.first(mark, _is(AccountUpdate, "alice"))
        # Frames are handled in order: once carol's MSFT tick is in, every AAPL effect is too.
        env.server.push_price("MSFT", 311)
        carol = await env.events.first(mark, _is(PositionUpdate, "carol", symbol="MSFT"))
        assert carol.current_price == D(311) and carol.unrealized_pnl == D(220)
        assert [type(e).__name__ for e in env.events.since(mark, "carol")] == ["PositionUpdate", "AccountUpdate"]
        assert all(e.symbol == "AAPL" for e in env.events.since(mark, "alice", PositionUpdate))
        # The same price again changes nothing, so nothing is sent.
        mark = env.events.mark()
        env.server.push_price("AAPL", 187.3)
        env.server.push_price("MSFT", 312)
        await env.events.first(mark, _is(PositionUpdate, "carol", symbol="MSFT"))
        assert not env.events.since(mark, "alice") and not env.events.since(mark, "bob")


async def test_account_updates_from_ticks_are_throttled(io_loop):
    clock = [1_000_000.0]
    async with alpaca_env(account_update_interval_seconds=3600.0, clock=lambda: clock[0]) as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        mark = env.events.mark()
        for price in (190, 191, 192):
            env.server.push_price("AAPL", price)
        await env.events.first(mark, _is(PositionUpdate, "alice", current_price=D(192)))
        # Within the interval after the sync's account update: positions flow, the account waits.
        assert not env.events.since(mark, "alice", AccountUpdate)
        # A fill is not throttled.
        env.server.trade(env.key("alice"), "AAPL", "buy", "1", "192")
        account = await env.events.first(mark, _is(AccountUpdate, "alice"))
        assert account.cash == D(10000) - D(192)


async def test_holdings_drive_the_data_subscription(io_loop):
    async with alpaca_env() as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        mark = env.events.mark()
        env.server.trade(env.key("carol"), "TSLA", "buy", "2", "250")
        await env.server.data_subscribed({"AAPL", "NVDA", "MSFT", "TSLA"})
        env.server.push_price("TSLA", 260)
        tsla = await env.events.first(mark, _is(PositionUpdate, "carol", symbol="TSLA", current_price=D(260)))
        assert tsla.unrealized_pnl == D(20) and tsla.opened_at is not None
        # Carol sells all her MSFT: a closed position (quantity 0) and the symbol is dropped.
        env.server.trade(env.key("carol"), "MSFT", "sell", "20", "315")
        closed = await env.events.first(mark, _is(PositionUpdate, "carol", symbol="MSFT", quantity=D(0)))
        assert closed.market_value == 0 and closed.unrealized_pnl == 0
        sale = await env.events.first(mark, _is(TradeExecuted, "carol", symbol="MSFT"))
        assert sale.pnl == D(300)  # 20 * (315 - 300)
        await env.server.data_subscribed({"AAPL", "NVDA", "TSLA"})


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_dropped_streams_reconnect_and_resync_without_duplicate_trades(io_loop):
    async with alpaca_env() as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        key = env.key("alice")
        mark = env.events.mark()
        first = env.server.trade(key, "AAPL", "buy", "5", "160")
        await env.events.first(mark, _is(TradeExecuted, "alice", trade_id=first["execution_id"]))
        syncs = env.feed.health().details["accounts"]["alice"]["rest"]["syncs"]

        assert env.server.drop_trading(key) == 1 and env.server.drop_data() == 1
        missed = env.server.trade(key, "AAPL", "buy", "5", "161", push=False)  # while nobody listens
        await env.server.trading_listening(key, count=2)
        await env.server.data_subscribed({"AAPL", "NVDA", "MSFT"})
        # The reconnect re-syncs over REST: the missed fill shows as order, position and account.
        resynced = await env.events.first(mark, _is(PositionUpdate, "alice", symbol="AAPL", quantity=D(20)))
        assert resynced.entry_price == (10 * D(150) + 5 * D(160) + 5 * D(161)) / 20
        order = await env.events.first(mark, _is(OrderUpdate, "alice", broker_order_id=missed["order"]["id"]))
        assert order.status == "filled"
        account = await env.events.first(mark, _is(AccountUpdate, "alice", cash=D(10000) - 800 - 805))
        assert account.equity == account.cash + 20 * D(161)

        # Alpaca replays nothing, but were a fill delivered twice it would count once.
        env.server.push_trade_update(key, first)
        after = env.server.trade(key, "AAPL", "sell", "2", "170")
        await env.events.first(mark, _is(TradeExecuted, "alice", trade_id=after["execution_id"]))
        trades = [e.trade_id for e in env.events.since(mark, "alice", TradeExecuted)]
        assert trades == [first["execution_id"], after["execution_id"]]
        health = await env.health_until(lambda h: h.connected, "connected again")
        assert health.reconnects == 2
        assert health.details["accounts"]["alice"]["trading"]["reconnects"] == 1
        assert health.details["data"]["reconnects"] == 1
        assert health.details["accounts"]["alice"]["rest"]["syncs"] > syncs
        # Prices flow again on the new data connection.
        env.server.push_price("NVDA", 530)
        await env.events.first(mark, _is(PositionUpdate, "bob", symbol="NVDA", current_price=D(530)))


async def test_bad_frames_are_logged_and_skipped(io_loop, caplog):
    caplog.set_level(logging.DEBUG)
    async with alpaca_env() as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        key, server = env.key("alice"), env.server
        mark = env.events.mark()
        good = server.trade(key, "AAPL", "buy", "1", "160", push=False)
        order = good["order"]
        for raw in ("not json", "[1, 2]", '{"stream": "trade_updates", "data": "garbage"}',
                    '{"stream": "trade_updates"}'):
            server.send_trading_raw(key, raw)
        for bad in (
            {"event": "fill", "timestamp": good["timestamp"], "order": {**order, "symbol": None}},
            {**good, "price": "abc", "execution_id": "x-1"},
            {**good, "price": "NaN", "execution_id": "x-2"},
            {**good, "qty": "-1", "execution_id": "x-3"},
            {**good, "timestamp": None, "execution_id": "x-4"},
            {**good, "order": {**order, "side": "sideways"}, "execution_id": "x-5"},
            {"event": "something_new", "timestamp": good["timestamp"], "order": {**order, "status": "odd"}},
        ):
            server.push_trade_update(key, bad)
        server.push_trade_update(key, good)

        server.send_data_raw("a text frame")
        server.send_data_raw(b"\xc1\xc1")
        server.send_data_raw(msgpack.packb({"T": "t", "S": "AAPL", "p": 1}))
        for trade in ({"T": "t", "S": "AAPL", "p": "abc"}, {"T": "t", "S": "AAPL", "p": float("nan")},
                      {"T": "t", "S": "AAPL", "p": -3}, {"T": "t", "S": "AAPL"}, {"T": "t", "S": 7, "p": 1},
                      {"T": "t", "S": "AAPL", "p": 1, "t": "yesterday"}):
            server.send_data_raw(msgpack.packb([trade], datetime=True))
        server.push_price("AAPL", 175)

        trade = await env.events.first(mark, _is(TradeExecuted, "alice"))
        assert trade.trade_id == good["execution_id"] and trade.price == D(160)
        await env.events.first(mark, _is(PositionUpdate, "alice", symbol="AAPL", current_price=D(175)))
        assert len(env.events.since(mark, "alice", TradeExecuted)) == 1
        await env.events.first(mark, _is(PositionUpdate, "bob", symbol="AAPL", current_price=D(175)))
        assert [e.current_price for e in env.events.since(mark, "bob", PositionUpdate)] == [D(175)]
        health = env.feed.health()
        assert health.connected and health.reconnects == 0
        skipped = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
        assert len(skipped) >= 10, skipped
        for _, secret in env.users.values():
            assert secret not in caplog.text


async def test_rejected_keys_show_in_health_while_other_users_stream(io_loop):
    bob_key = USERS["bob"][0]
    async with alpaca_env(before_start=lambda server: server.refuse(bob_key)) as env:
        await env.ready(users=["alice", "carol"], symbols={"AAPL", "MSFT"})
        health = await env.health_until(
            lambda h: h.details["accounts"]["bob"]["trading"]["error"] and h.details["accounts"]["bob"]["rest"]["error"],
            "bob's errors",
        )
        bob = health.details["accounts"]["bob"]
        assert "refused" in bob["trading"]["error"] and not bob["trading"]["connected"]
        assert bob["rest"]["error"] == "unauthorized (HTTP 401)" and bob["rest"]["syncs"] == 0
        # One account of three refused: the feed still runs for the others (status degraded, not offline).
        assert health.connected and health.impaired == "1 of 3 accounts not connected: bob"
        assert health.details["accounts"]["alice"]["trading"]["connected"]
        assert all(secret not in repr(health) for _, secret in env.users.values())

        mark = env.events.mark()
        env.server.trade(env.key("alice"), "AAPL", "buy", "2", "158")
        await env.events.first(mark, _is(TradeExecuted, "alice"))
        env.server.push_price("MSFT", 305)
        await env.events.first(mark, _is(PositionUpdate, "carol", current_price=D(305)))
        assert env.server.trading_refusals[bob_key] >= 1
        assert not [e for e in env.events.events if e.user_id == "bob"]


async def test_missing_environment_variables_disable_only_that_user(io_loop):
    async with alpaca_env(env_overrides={"BOB_SECRET": ""}) as env:
        await env.ready(users=["alice", "carol"], symbols={"AAPL", "MSFT"})
        bob = env.feed.health().details["accounts"]["bob"]
        assert bob["trading"]["error"] == "environment variable BOB_SECRET not set"
        assert not [e for e in env.events.events if e.user_id == "bob"]


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_data_connection_limit_moves_the_data_stream_to_other_keys(io_loop):
    alice_key = USERS["alice"][0]
    async with alpaca_env(before_start=lambda server: server.data_limit_keys.add(alice_key)) as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        assert env.server.data_refusals[alice_key] == 1
        health = await env.health_until(lambda h: h.details["data"]["connected"], "data connected")
        assert health.details["data"]["keysOf"] in ("bob", "carol") and health.connected
        mark = env.events.mark()
        env.server.push_price("AAPL", 150)
        await env.events.first(mark, _is(PositionUpdate, "alice", current_price=D(150)))


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_rest_rate_limit_is_retried_by_the_feed_not_slept_on(io_loop):
    bob_key = USERS["bob"][0]
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with alpaca_env(before_start=lambda server: server.fail_rest(bob_key, 429, times=1)) as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        # One failed sync (429, no SDK retries with sleep(3)), then the feed's own retry a second later.
        assert env.server.rest_calls[(bob_key, "/v2/account")] + env.server.rest_calls[(bob_key, "/v2/positions")] >= 3
        assert env.feed.health().details["accounts"]["bob"]["rest"]["error"] is None
        assert loop.time() - started < 3.0


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_refused_trading_upgrades_still_sync_over_rest_then_connect(io_loop):
    def refuse_upgrades(server: AlpacaTestServer) -> None:
        server.trading_upgrade_status = 429

    async with alpaca_env(users=["alice"], before_start=refuse_upgrades) as env:
        # The first REST sync does not wait for a stream that cannot connect.
        await env.events.first(0, _is(AccountUpdate, "alice"))
        health = await env.health_until(
            lambda h: h.details["accounts"]["alice"]["trading"]["error"], "the refused upgrade")
        assert health.details["accounts"]["alice"]["trading"]["error"] == "rate limited (HTTP 429)"
        assert not health.connected
        env.server.trading_upgrade_status = None
        await env.server.trading_listening(env.key("alice"))
        await env.health_until(lambda h: h.connected, "connected")


async def test_no_event_of_one_account_reaches_another(io_loop):
    async with alpaca_env() as env:
        await env.ready(symbols={"AAPL", "NVDA", "MSFT"})
        mark = env.events.mark()
        fills = {}
        for round_ in range(3):
            for user, qty in (("alice", 1), ("bob", 2), ("carol", 4)):
                fill = env.server.trade(env.key(user), "AAPL", "buy", qty, 150 + round_)
                fills[fill["execution_id"]] = user
            env.server.push_price("AAPL", 160 + round_)
        await env.events.wait_for(
            lambda: len(env.events.since(mark, kind=TradeExecuted)) == len(fills), "every trade")
        env.server.push_price("AAPL", 199)
        for user in env.users:
            await env.events.first(mark, _is(PositionUpdate, user, symbol="AAPL", current_price=D(199)))
        for trade in env.events.since(mark, kind=TradeExecuted):
            assert fills[trade.trade_id] == trade.user_id
        for user in env.users:
            positions = env.server.accounts[env.key(user)].positions
            latest = env.events.since(mark, user, PositionUpdate)[-1]
            signed = latest.quantity if latest.side == "long" else -latest.quantity
            assert signed == positions["AAPL"].qty, user
        env.assert_isolation()


async def test_health_follows_alpacas_clock_and_counts_syncs_as_signs_of_life(io_loop):
    clock = [1_700_000_000.0]

    def closed_market(server: AlpacaTestServer) -> None:
        server.market_open = False

    async with alpaca_env(users=["carol"], before_start=closed_market, clock=lambda: clock[0],
                          sync_interval_seconds=0.2) as env:
        await env.ready(symbols={"MSFT"})
        health = await env.health_until(lambda h: not h.market_open, "the market closed")
        assert health.last_event_at == clock[0] and health.connected
        carol = health.details["accounts"]["carol"]
        assert carol["rest"]["lastSyncAt"] == "2023-11-14T22:13:20.000Z" and carol["paper"] is True
        # Nothing happens for an hour but the periodic sync: the feed is quiet, not silent.
        clock[0] += 3600
        syncs = carol["rest"]["syncs"]
        health = await env.health_until(
            lambda h: h.details["accounts"]["carol"]["rest"]["syncs"] > syncs, "another sync")
        assert health.last_event_at == clock[0]


async def test_partial_fills_cancels_and_replacements_stream_as_order_statuses(io_loop):
    async with alpaca_env(users=["alice"]) as env:
        await env.ready(symbols={"AAPL"})
        key, server = env.key("alice"), env.server
        mark = env.events.mark()
        order_id = server.place_order(key, "AAPL", "buy", "10", type_="limit", limit_price="151")
        first = server.fill(key, order_id, "4", "150.5")
        server.order_event(key, order_id, "pending_cancel")
        server.order_event(key, order_id, "canceled")
        other = server.place_order(key, "AAPL", "sell", "3", type_="limit", limit_price="170")
        server.order_event(key, other, "replaced")
        await env.events.first(mark, _is(OrderUpdate, "alice", broker_order_id=other, status="canceled"))
        statuses = [(e.broker_order_id == order_id, e.status, e.filled_qty)
                    for e in env.events.since(mark, "alice", OrderUpdate)]
        assert statuses == [(True, "new", 0), (True, "partially_filled", 4), (True, "canceled", 4),
                            (False, "new", 0), (False, "canceled", 0)]  # pending_cancel changed nothing visible
        [trade] = env.events.since(mark, "alice", TradeExecuted)
        assert (trade.trade_id, trade.quantity, trade.price) == (first["execution_id"], D(4), D("150.5"))
        limit = env.events.since(mark, "alice", OrderUpdate)[1]
        assert (limit.type, limit.limit_price, limit.qty) == ("limit", D(151), D(10))
