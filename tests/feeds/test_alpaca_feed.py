"""The Alpaca feed end to end on the bus: the real alpaca-py against the local Alpaca."""

from __future__ import annotations

import logging
from decimal import Decimal

from portfolio_ws.core import wire
from portfolio_ws.core.events import AccountUpdate, OrderUpdate, PositionUpdate, TradeExecuted
from tests.feeds.alpaca_env import alpaca_env

D = Decimal


def _is(kind: type, user: str, **fields: object):  # type: ignore[no-untyped-def]
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
        assert (short.quantity, short.side, short.unrealized_pnl, short.market_value) == (D(5), "short", D(125), D(-775))
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
