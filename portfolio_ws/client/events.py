"""What a client receives, as typed values, and the decoder from wire text to them (sans-I/O).

Rule 1: every event is a frozen dataclass. Amounts are ``Decimal`` parsed from the wire's decimal
strings (never float); times are aware ``datetime``; every data event carries the ``seq`` of the
message it came in, so the last one applied is the client's ``resumeFrom``.
Rule 2: a ``batch`` is unpacked into one event per item, each carrying the batch's ``seq``; a
``snapshot`` stays one ``Snapshot`` (it replaces state, it does not update it).
Rule 3: decoding is one ``ujson.loads`` and one pass; unknown message types and fields are
ignored, so a newer server does not break an older client.
Rule 4: the fields are the server's: each data event holds ``seq`` plus exactly the fields of its
``core.events`` class that are sent to clients (``core.events.schema``, the one table), and is
decoded from that table; a test fails when the two drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Union

import ujson

from .. import constants as c
from ..core.events import AccountUpdate, OrderUpdate, PositionUpdate, TradeExecuted, schema


# ---- data events -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PositionEvent:
    """A position changed. ``quantity`` is unsigned (``side`` says long/short); 0 means closed."""

    seq: int
    symbol: str
    quantity: Decimal
    current_price: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal
    unrealized_pnl_percent: Decimal
    market_value: Decimal
    side: str
    strategy_id: str | None
    opened_at: datetime | None

    @property
    def closed(self) -> bool:
        return not self.quantity


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order as it now is (each update carries the whole order)."""

    seq: int
    order_id: str
    broker_order_id: str | None
    symbol: str
    side: str
    type: str
    status: str
    qty: Decimal
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    submitted_at: datetime
    filled_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status in c.OPEN_ORDER_STATUSES


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """The account's balances; ``timestamp`` is when the broker computed them."""

    seq: int
    equity: Decimal
    buying_power: Decimal
    cash: Decimal
    portfolio_value: Decimal
    day_pnl: Decimal
    day_pnl_percent: Decimal
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """A fill. ``pnl`` is its realized P&L, ``None`` when it opens or adds to a position."""

    seq: int
    trade_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    pnl: Decimal | None
    executed_at: datetime
    strategy_id: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole current state of ``channels`` at offset ``seq``: replace, don't merge."""

    seq: int
    channels: frozenset[str]
    positions: tuple[PositionEvent, ...]
    orders: tuple[OrderEvent, ...]
    account: AccountEvent | None
    trades: tuple[TradeEvent, ...]


# ---- control events (no seq) -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Connected:
    """The server admitted the socket (``info`` ``CONNECTED``)."""

    connection_id: str
    available_channels: tuple[str, ...]
    batch_window_ms: int
    limits: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The full subscribed set after a ``subscribe`` (``info`` ``SUBSCRIBED``)."""

    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Resumed:
    """The answer to ``resumeFrom``. ``recovered`` false: a ``Snapshot`` follows and replaces state."""

    recovered: bool
    from_seq: int
    to_seq: int


@dataclass(frozen=True, slots=True)
class ServerError:
    """An ``error`` message (``constants.INVALID_MESSAGE``...): the connection stays open, unless
    ``close_code`` is set: then ``code`` is a ``constants.CloseCause`` and the close follows."""

    code: str
    message: str
    details: dict[str, Any]

    @property
    def close_code(self) -> int | None:
        """Set when this error names the cause of a close that follows (``details.closeCode``)."""
        value = self.details.get("closeCode")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Pong:
    """The server answered a ping (the client consumes these; they are not dispatched)."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Made by the client, not the server: its connection status changed.

    ``status`` is one of ``connecting``, ``connected``, ``reconnecting``, ``polling``, ``closed``.
    ``code``/``reason``: the close that caused it, if any; ``retry_in``: seconds until the next
    connection attempt (``None`` when none is planned).
    """

    status: str
    code: int | None = None
    reason: str | None = None
    retry_in: float | None = None


DataEvent = Union[PositionEvent, OrderEvent, AccountEvent, TradeEvent]
ClientEvent = Union[PositionEvent, OrderEvent, AccountEvent, TradeEvent, Snapshot, Connected, Subscribed,
                    Unsubscribed, Resumed, ServerError, Pong, StatusChange]


# ---- decoding --------------------------------------------------------------------------------
_parse_time = datetime.fromisoformat  # 3.11 reads the wire's "...123Z"

CORE_EVENT: dict[type, type] = {PositionEvent: PositionUpdate, OrderEvent: OrderUpdate, AccountEvent: AccountUpdate,
                                TradeEvent: TradeExecuted}
"""Each data event class -> the ``core.events`` class whose sent fields it holds (besides ``seq``)."""


def _decoder(cls: type) -> Callable[[int, dict[str, Any]], Any]:
    """``(seq, data) -> cls``, reading the wire names and kinds of the core's schema table: a
    required field missing raises ``KeyError``, an optional one missing or null is ``None``.

    Written out as source once per class and compiled (as ``dataclasses`` does): a loop over the
    table was a third slower than the hand-written decoders it replaces, on the client's hot path."""
    sent = {f.name: f for f in schema(CORE_EVENT[cls]) if f.sent}
    parse = {Decimal: "Decimal", datetime: "parse_time", str: ""}
    args = []
    for name in (f.name for f in fields(cls)[1:]):  # after seq
        f = sent[name]
        if f.optional and f.kind is str:
            args.append(f"d.get({f.wire!r})")
        elif f.optional:
            args.append(f"(None if (v := d.get({f.wire!r})) is None else {parse[f.kind]}(v))")
        else:
            args.append(f"{parse[f.kind]}(d[{f.wire!r}])")
    scope: dict[str, Any] = {"cls": cls, "Decimal": Decimal, "parse_time": _parse_time}
    exec(f"def {cls.__name__}(seq, d):\n    return cls(seq, {', '.join(args)})\n", scope)  # noqa: S102
    decode_event: Callable[[int, dict[str, Any]], Any] = scope[cls.__name__]
    return decode_event


position: Callable[[int, dict[str, Any]], PositionEvent] = _decoder(PositionEvent)
order: Callable[[int, dict[str, Any]], OrderEvent] = _decoder(OrderEvent)
account: Callable[[int, dict[str, Any]], AccountEvent] = _decoder(AccountEvent)
trade: Callable[[int, dict[str, Any]], TradeEvent] = _decoder(TradeEvent)


def snapshot(seq: int, d: dict[str, Any]) -> Snapshot:
    account_data = d.get(c.ACCOUNT)
    return Snapshot(
        seq,
        frozenset(channel for channel in c.CHANNELS if channel in d),
        tuple(position(seq, item) for item in d.get(c.POSITIONS) or ()),
        tuple(order(seq, item) for item in d.get(c.ORDERS) or ()),
        None if account_data is None else account(seq, account_data),
        tuple(trade(seq, item) for item in d.get(c.TRADES) or ()),
    )


def _batch(seq: int, d: dict[str, Any]) -> list[ClientEvent]:
    # Channel order as the server sends it: positions, orders, account, trades.
    events: list[ClientEvent] = [position(seq, item) for item in d.get(c.POSITIONS) or ()]
    events.extend(order(seq, item) for item in d.get(c.ORDERS) or ())
    if d.get(c.ACCOUNT) is not None:
        events.append(account(seq, d[c.ACCOUNT]))
    events.extend(trade(seq, item) for item in d.get(c.TRADES) or ())
    return events


def _info(data: dict[str, Any]) -> list[ClientEvent]:
    code, details = data.get("code"), data.get("details") or {}
    if code == c.CONNECTED:
        return [Connected(details.get("connectionId", ""), tuple(details.get("availableChannels", ())),
                          details.get("batchWindowMs", 0), details.get("limits", {}))]
    if code == c.SUBSCRIBED:
        return [Subscribed(tuple(details.get("channels", ())))]
    if code == c.UNSUBSCRIBED:
        return [Unsubscribed(tuple(details.get("channels", ())))]
    if code == c.RESUMED:
        return [Resumed(bool(details.get("recovered")), details.get("from", 0), details.get("to", 0))]
    return []


_SINGLE: dict[str, Callable[[int, dict[str, Any]], DataEvent]] = {
    c.POSITION_UPDATE: position,
    c.ORDER_UPDATE: order,
    c.ACCOUNT_UPDATE: account,
    c.TRADE_EXECUTED: trade,
}


def from_message(message: dict[str, Any]) -> list[ClientEvent]:
    """The events one decoded server message holds (none for an unknown type)."""
    type_ = message.get("type")
    data = message.get("data") or {}
    single = _SINGLE.get(type_)  # type: ignore[arg-type]
    if single is not None:
        return [single(message["seq"], data)]
    if type_ == c.BATCH:
        return _batch(message["seq"], data)
    if type_ == c.SNAPSHOT:
        return [snapshot(message["seq"], data)]
    if type_ == c.PONG:
        return [Pong()]
    if type_ == c.INFO:
        return _info(data)
    if type_ == c.ERROR:
        return [ServerError(data.get("code", ""), data.get("message", ""), data.get("details") or {})]
    return []


def decode(raw: str | bytes) -> list[ClientEvent]:
    """The events of one WebSocket text frame. Raises ``ValueError`` (or ``KeyError``/
    ``decimal.InvalidOperation``) on a frame that is not the protocol's."""
    message = ujson.loads(raw)
    if not isinstance(message, dict):
        raise ValueError("a server message must be a JSON object")
    return from_message(message)
