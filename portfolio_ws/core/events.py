"""The event model: the four portfolio events every feed produces and every client receives.

Rule 1: events are frozen values. Money, prices and quantities are ``Decimal``; times are aware
``datetime`` in UTC. Construction validates, so a bad feed value fails at the feed, loudly.
Rule 2: each event names its wire type, its channel and its coalescing key; formatting for the
wire happens only in ``portfolio_ws.core.wire``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Union

from .. import constants as c
from ..errors import InvalidEvent


_DECIMAL, _DATETIME, _TEXT = 0, 1, 2
_SCHEMAS: dict[type, tuple[tuple[str, int, bool], ...]] = {}


def _schema(cls: type) -> tuple[tuple[str, int, bool], ...]:
    """(name, kind, optional) per field, worked out once per class: validation is on the hot path."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        entries = []
        for f in fields(cls):
            text = str(f.type)
            kind = _DECIMAL if "Decimal" in text else _DATETIME if "datetime" in text else _TEXT
            entries.append((f.name, kind, "None" in text))
        schema = _SCHEMAS[cls] = tuple(entries)
    return schema


def _check(event: object) -> None:
    for name, kind, optional in _schema(type(event)):
        value = getattr(event, name)
        if value is None:
            if not optional:
                raise InvalidEvent(f"{type(event).__name__}.{name} is required")
            continue
        if kind == _DECIMAL:
            if not isinstance(value, Decimal) or not value.is_finite():
                raise InvalidEvent(f"{type(event).__name__}.{name} must be a finite Decimal, got {value!r}")
        elif kind == _DATETIME:
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise InvalidEvent(f"{type(event).__name__}.{name} must be an aware datetime, got {value!r}")
        elif not isinstance(value, str) or not value:
            raise InvalidEvent(f"{type(event).__name__}.{name} must be a non-empty string, got {value!r}")


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    """A position's quantity, price or P&L changed. ``quantity`` is unsigned; ``side`` says long/short.

    A closed position is sent with ``quantity == 0``.
    """

    TYPE: ClassVar[str] = c.POSITION_UPDATE
    CHANNEL: ClassVar[c.Channel] = c.POSITIONS

    user_id: str
    symbol: str
    quantity: Decimal
    current_price: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal
    unrealized_pnl_percent: Decimal
    market_value: Decimal
    side: str
    strategy_id: str | None = None
    opened_at: datetime | None = None

    def __post_init__(self) -> None:
        _check(self)
        if self.side not in ("long", "short"):
            raise InvalidEvent(f"PositionUpdate.side must be long or short, got {self.side!r}")
        if self.quantity < 0:
            raise InvalidEvent("PositionUpdate.quantity is unsigned; use side='short'")

    @property
    def key(self) -> str:
        return self.symbol


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's status changed. ``status`` is one of ``constants.ORDER_STATUSES``."""

    TYPE: ClassVar[str] = c.ORDER_UPDATE
    CHANNEL: ClassVar[c.Channel] = c.ORDERS

    user_id: str
    order_id: str
    symbol: str
    side: str
    type: str
    status: str
    qty: Decimal
    filled_qty: Decimal
    submitted_at: datetime
    broker_order_id: str | None = None
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    filled_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _check(self)
        if self.status not in c.ORDER_STATUSES:
            raise InvalidEvent(f"OrderUpdate.status {self.status!r} is not one of {c.ORDER_STATUSES}")
        if self.side not in ("buy", "sell"):
            raise InvalidEvent(f"OrderUpdate.side must be buy or sell, got {self.side!r}")

    @property
    def key(self) -> str:
        return self.order_id

    @property
    def is_open(self) -> bool:
        return self.status in c.OPEN_ORDER_STATUSES

    @property
    def last_time(self) -> datetime:
        return self.updated_at or self.filled_at or self.submitted_at


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """The account's balances changed. ``timestamp`` is when the broker computed them."""

    TYPE: ClassVar[str] = c.ACCOUNT_UPDATE
    CHANNEL: ClassVar[c.Channel] = c.ACCOUNT

    user_id: str
    equity: Decimal
    buying_power: Decimal
    cash: Decimal
    portfolio_value: Decimal
    day_pnl: Decimal
    day_pnl_percent: Decimal
    timestamp: datetime

    def __post_init__(self) -> None:
        _check(self)

    @property
    def key(self) -> str:
        return c.ACCOUNT


@dataclass(frozen=True, slots=True)
class TradeExecuted:
    """A fill happened. ``pnl`` is the realized P&L of this fill, ``None`` when it opens a position
    or cannot be computed. Trades are never coalesced."""

    TYPE: ClassVar[str] = c.TRADE_EXECUTED
    CHANNEL: ClassVar[c.Channel] = c.TRADES

    user_id: str
    trade_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    executed_at: datetime
    pnl: Decimal | None = None
    strategy_id: str | None = None
    order_id: str | None = None

    def __post_init__(self) -> None:
        _check(self)
        if self.side not in ("buy", "sell"):
            raise InvalidEvent(f"TradeExecuted.side must be buy or sell, got {self.side!r}")

    @property
    def key(self) -> str:
        return self.trade_id


Event = Union[PositionUpdate, OrderUpdate, AccountUpdate, TradeExecuted]
EVENT_TYPES: tuple[type, ...] = (PositionUpdate, OrderUpdate, AccountUpdate, TradeExecuted)
