"""The one set of event builders for every test: Decimal in, as the feeds produce them.

Each builder makes a valid event with realistic figures; a test names only what it is about
(``position("alice", price="101.00")``). Time is ``T0`` (a Monday, 10:00 New York) unless ``at``
moves it (``later(seconds)``); nothing here reads a clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from portfolio_ws.core.events import AccountUpdate, OrderUpdate, PositionUpdate, TradeExecuted

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)  # a Monday, 10:00 New York
NOW = T0.timestamp()


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def position(user: str = "u1", symbol: str = "AAPL", qty: str = "100", price: str = "175.50",
             entry: str = "170.25", side: str = "long", at: datetime = T0) -> PositionUpdate:
    q, p, e = Decimal(qty), Decimal(price), Decimal(entry)
    sign = 1 if side == "long" else -1
    pnl = (p - e) * q * sign
    pct = (pnl / (e * q) * 100) if q else Decimal(0)
    return PositionUpdate(user, symbol, q, p, e, pnl, pct, p * q, side, "strategy-1", at)


def order(user: str = "u1", order_id: str = "order-1", status: str = "new", symbol: str = "TSLA",
          qty: str = "50", filled: str = "0", avg: str | None = None, at: datetime = T0) -> OrderUpdate:
    return OrderUpdate(user, order_id, symbol, "buy", "limit", status, Decimal(qty), Decimal(filled), at,
                       broker_order_id="broker-" + order_id,
                       filled_avg_price=Decimal(avg) if avg else None, limit_price=Decimal("246.00"),
                       filled_at=at if status == "filled" else None)


def account(user: str = "u1", equity: str = "104308.75", cash: str = "50000.00", day_pnl: str = "1234.56",
            at: datetime = T0) -> AccountUpdate:
    e = Decimal(equity)
    return AccountUpdate(user, e, e * 2, Decimal(cash), e, Decimal(day_pnl), Decimal("1.2"), at)


def trade(user: str = "u1", trade_id: str = "trade-1", symbol: str = "NVDA", qty: str = "25",
          price: str = "520.50", pnl: str | None = "1250.00", at: datetime = T0) -> TradeExecuted:
    return TradeExecuted(user, trade_id, symbol, "sell", Decimal(qty), Decimal(price), at,
                         Decimal(pnl) if pnl else None, "strategy-1", "order-1")


CLOCK_START = 1_767_225_600.0  # 2026-01-01 00:00 UTC, epoch seconds: where SteppingClock starts


class SteppingClock:
    """A store's clock that moves one second at every reading, from ``CLOCK_START``: the first record
    made is stamped ``CLOCK_START + 1``, the next ``CLOCK_START + 2``."""

    def __init__(self) -> None:
        self.now = CLOCK_START

    def __call__(self) -> float:
        self.now += 1
        return self.now
