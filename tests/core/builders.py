"""Event builders and an engine driver for the core tests: Decimal in, as the feeds produce them;
time is a float passed in, never read from a clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import ujson

from portfolio_ws.constants import Close
from portfolio_ws.core.events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted
from portfolio_ws.core.stream import Closing, Outgoing, StreamCore
from portfolio_ws.settings import Settings

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)  # a Monday, 10:00 New York
NOW = T0.timestamp()
DATA_TYPES = {"position_update", "order_update", "account_update", "trade_executed", "batch", "snapshot"}
CONTROL_TYPES = {"info", "error", "pong"}


def position(user: str = "u1", symbol: str = "AAPL", qty: str = "100", price: str = "175.50",
             entry: str = "170.25", side: str = "long") -> PositionUpdate:
    q, p, e = Decimal(qty), Decimal(price), Decimal(entry)
    sign = 1 if side == "long" else -1
    pnl = (p - e) * q * sign
    pct = (pnl / (e * q) * 100) if q else Decimal(0)
    return PositionUpdate(user, symbol, q, p, e, pnl, pct, p * q, side, "strategy-1", T0)


def order(user: str = "u1", order_id: str = "order-1", status: str = "new", symbol: str = "TSLA",
          qty: str = "50", filled: str = "0", at: datetime = T0) -> OrderUpdate:
    return OrderUpdate(user, order_id, symbol, "buy", "limit", status, Decimal(qty), Decimal(filled), at,
                       broker_order_id="broker-" + order_id, limit_price=Decimal("246.00"),
                       filled_at=at if status == "filled" else None)


def account(user: str = "u1", equity: str = "104308.75", at: datetime = T0) -> AccountUpdate:
    e = Decimal(equity)
    return AccountUpdate(user, e, e * 2, Decimal("50000.00"), e, Decimal("1234.56"), Decimal("1.2"), at)


def trade(user: str = "u1", trade_id: str = "trade-1", symbol: str = "NVDA", qty: str = "25",
          price: str = "520.50", at: datetime = T0) -> TradeExecuted:
    return TradeExecuted(user, trade_id, symbol, "sell", Decimal(qty), Decimal(price), at,
                         Decimal("1250.00"), "strategy-1", "order-1")


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- the engine ---------------------------------------------------------------------------------
def make_core(now: float = NOW, **sections: dict[str, Any]) -> StreamCore:
    """A StreamCore over default settings, with ``streaming={...}``/``limits={...}``/``recovery={...}``
    replacing individual fields."""
    s = Settings()
    streaming = replace(s.streaming, **sections.get("streaming", {}))
    limits = replace(s.limits, **sections.get("limits", {}))
    recovery = replace(s.recovery, **sections.get("recovery", {}))
    return StreamCore(streaming, limits, recovery, now)


class Sent:
    """What one ``data_to_send()`` produced, parsed: frames per connection, closes, raw outputs."""

    def __init__(self, outputs: list[Outgoing | Closing]) -> None:
        self.outputs = outputs
        self.frames = [o for o in outputs if isinstance(o, Outgoing)]
        self.closes: dict[int, Close] = {o.connection: o.close for o in outputs if isinstance(o, Closing)}
        self.by_conn: dict[int, list[dict[str, Any]]] = {}
        for o in self.frames:
            msg = ujson.loads(o.frame)
            for conn in o.connections:
                self.by_conn.setdefault(conn, []).append(msg)

    def to(self, conn: int) -> list[dict[str, Any]]:
        return self.by_conn.get(conn, [])

    def types(self, conn: int) -> list[str]:
        return [m["type"] for m in self.to(conn)]

    def data(self, conn: int) -> list[dict[str, Any]]:
        return [m for m in self.to(conn) if m["type"] in DATA_TYPES]


def drain(core: StreamCore) -> Sent:
    return Sent(core.data_to_send())


def send(core: StreamCore, conn: int, message: Any, now: float = NOW) -> Sent:
    core.receive_frame(conn, message if isinstance(message, (str, bytes)) else ujson.dumps(message), now)
    return drain(core)


def connect(core: StreamCore, user: str = "u1", *channels: str, session: str | None = "s1",
            now: float = NOW) -> int:
    """Open a connection and subscribe it (if channels are given); drains everything it was sent."""
    conn = core.open(user, session, now)
    sent = drain(core)
    assert sent.types(conn) == ["info"] and not sent.closes, sent.outputs
    if channels:
        send(core, conn, {"type": "subscribe", "channels": list(channels)}, now)
    return conn


def publish(core: StreamCore, *events: Event, now: float = NOW) -> list[int]:
    return [core.receive_event(e, now) for e in events]
