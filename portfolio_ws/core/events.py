"""The event model: the four portfolio events every feed produces and every client receives.

Rule 1: events are frozen values. Money, prices and quantities are ``Decimal``; times are aware
``datetime`` in UTC. Construction validates, so a bad feed value fails at the feed, loudly.
Rule 2: each event names its wire type, its channel and its coalescing key; formatting for the
wire happens only in ``portfolio_ws.core.wire``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, NamedTuple, Union

from .. import constants as c
from ..errors import InvalidEvent


class Field(NamedTuple):
    """One field of an event class: the one schema table (issue 12) that validation here, the
    codec, the feed guard, the publish API's parser and the Python client's decoders all read.

    ``kind`` is ``Decimal``, ``datetime`` or ``str``; ``wire`` the camelCase name the field has
    on the wire; ``sent`` whether clients receive it in the event's ``data`` object (``user_id``
    travels in the envelope, ``updated_at`` and a trade's ``order_id`` stay in the server)."""

    name: str
    kind: type
    optional: bool
    wire: str
    sent: bool


_NOT_SENT = {"sent": False}
_SCHEMAS: dict[type, tuple[Field, ...]] = {}


def wire_name(name: str) -> str:
    """``unrealized_pnl_percent`` -> ``unrealizedPnlPercent``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def schema(cls: type) -> tuple[Field, ...]:
    """The fields of event class ``cls`` in declaration order, worked out once per class
    (validation is on the hot path)."""
    table = _SCHEMAS.get(cls)
    if table is None:
        entries = []
        for f in fields(cls):
            text = str(f.type)  # "Decimal | None": annotations are strings here
            kind = Decimal if "Decimal" in text else datetime if "datetime" in text else str
            entries.append(Field(f.name, kind, "None" in text, wire_name(f.name), f.metadata.get("sent", True)))
        table = _SCHEMAS[cls] = tuple(entries)
    return table


def _check(event: object) -> None:
    for name, kind, optional, _, _ in schema(type(event)):
        value = getattr(event, name)
        if value is None:
            if not optional:
                raise InvalidEvent(f"{type(event).__name__}.{name} is required")
            continue
        if kind is Decimal:
            if not isinstance(value, Decimal) or not value.is_finite():
                raise InvalidEvent(f"{type(event).__name__}.{name} must be a finite Decimal, got {value!r}")
        elif kind is datetime:
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

    user_id: str = field(metadata=_NOT_SENT)
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
        if self.side not in c.POSITION_SIDES:
            raise InvalidEvent(f"PositionUpdate.side must be long or short, got {self.side!r}")
        if self.quantity < 0:
            raise InvalidEvent("PositionUpdate.quantity is unsigned; use side='short'")
        if self.market_value < 0:
            raise InvalidEvent("PositionUpdate.market_value is unsigned; side says short")

    @property
    def key(self) -> str:
        return self.symbol


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's status changed. ``status`` is one of ``constants.ORDER_STATUSES``."""

    TYPE: ClassVar[str] = c.ORDER_UPDATE
    CHANNEL: ClassVar[c.Channel] = c.ORDERS

    user_id: str = field(metadata=_NOT_SENT)
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
    updated_at: datetime | None = field(default=None, metadata=_NOT_SENT)

    def __post_init__(self) -> None:
        _check(self)
        if self.status not in c.ORDER_STATUSES:
            raise InvalidEvent(f"OrderUpdate.status {self.status!r} is not one of {c.ORDER_STATUSES}")
        if self.side not in c.ORDER_SIDES:
            raise InvalidEvent(f"OrderUpdate.side must be buy or sell, got {self.side!r}")
        if self.qty < 0 or self.filled_qty < 0:
            raise InvalidEvent("OrderUpdate.qty and filled_qty are unsigned; side says buy or sell")

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

    user_id: str = field(metadata=_NOT_SENT)
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

    user_id: str = field(metadata=_NOT_SENT)
    trade_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    executed_at: datetime
    pnl: Decimal | None = None
    strategy_id: str | None = None
    order_id: str | None = field(default=None, metadata=_NOT_SENT)

    def __post_init__(self) -> None:
        _check(self)
        if self.side not in c.ORDER_SIDES:
            raise InvalidEvent(f"TradeExecuted.side must be buy or sell, got {self.side!r}")
        if self.quantity <= 0:
            raise InvalidEvent("TradeExecuted.quantity must be more than zero (a fill of something)")

    @property
    def key(self) -> str:
        return self.trade_id


Event = Union[PositionUpdate, OrderUpdate, AccountUpdate, TradeExecuted]
EVENT_TYPES: tuple[type, ...] = (PositionUpdate, OrderUpdate, AccountUpdate, TradeExecuted)
SCHEMA: dict[type, tuple[Field, ...]] = {cls: schema(cls) for cls in EVENT_TYPES}
"""Every event class's fields: the table ``schema`` serves."""
