"""Alpaca's wire values → portfolio-ws values: pure functions, no I/O, no clock, no SDK types.

Rule 1: every number becomes a ``Decimal`` from its text (``Decimal(str(x))`` for the floats and
ints msgpack carries); anything missing, non-finite or unparseable raises ``MalformedAlpaca``
and the caller logs and skips that frame.
Rule 2: Alpaca's order events and order statuses map to the API document's eight statuses
through the two tables below, nothing else. What maps to nothing is ignored (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Mapping

from ...constants import ORDER_SIDES, OrderSide, OrderStatus, PositionSide
from ...core.events import OrderUpdate
from ...errors import PortfolioWsError


class MalformedAlpaca(PortfolioWsError):
    """Alpaca (or something posing as it) sent a value we cannot use. Log it, skip the frame."""


# --- status tables ----------------------------------------------------------------------------
# "working": still open; partially_filled when something filled, else new.
_WORKING: Final = "working"
S = OrderStatus

# An event in this table decides the status on its own.
EVENT_STATUS: Final[Mapping[str, OrderStatus]] = {
    "pending_new": S.PENDING_NEW,
    "new": S.NEW,
    "accepted": S.ACCEPTED,
    "partial_fill": S.PARTIALLY_FILLED,
    "fill": S.FILLED,
    "canceled": S.CANCELED,
    "expired": S.EXPIRED,
    "rejected": S.REJECTED,
    # The replaced order is closed for good; its replacement streams under its own id.
    "replaced": S.CANCELED,
}

# Every other event (done_for_day, pending_cancel, pending_replace, order_cancel_rejected,
# order_replace_rejected, restated, calculated, suspended, trade_bust, trade_correct, ...)
# and every REST order take the status of the order they carry, through this table.
ORDER_STATUS: Final[Mapping[str, OrderStatus | str]] = {
    "pending_new": S.PENDING_NEW,
    "new": S.NEW,
    "accepted": S.ACCEPTED,
    "partially_filled": S.PARTIALLY_FILLED,
    "filled": S.FILLED,
    "canceled": S.CANCELED,
    "expired": S.EXPIRED,
    "rejected": S.REJECTED,
    "replaced": S.CANCELED,
    "done_for_day": _WORKING,
    "pending_cancel": _WORKING,
    "pending_replace": _WORKING,
    "stopped": _WORKING,
    "pending_review": S.PENDING_NEW,
    "accepted_for_bidding": S.ACCEPTED,
    "held": S.ACCEPTED,
    "suspended": S.ACCEPTED,
    "calculated": S.FILLED,
}

FILL_EVENTS: Final = frozenset({"fill", "partial_fill"})
# Events after which positions and cash must be re-read from REST (a fill was undone or moved).
RESYNC_EVENTS: Final = frozenset({"trade_bust", "trade_correct", "restated"})
# Asset classes priced by the stock data stream; others are priced by REST syncs only.
STREAMED_ASSET_CLASSES: Final = frozenset({"us_equity", ""})
# Contract multiplier: an option quantity of 1 is 100 shares of exposure.
MULTIPLIERS: Final[Mapping[str, Decimal]] = {"us_option": Decimal(100)}
ONE: Final = Decimal(1)


def order_status(event: str | None, alpaca_status: str | None, filled_qty: Decimal) -> OrderStatus | None:
    """The API document's status for an Alpaca event (or None for a REST order) and order status."""
    status = EVENT_STATUS.get(event or "") or ORDER_STATUS.get(alpaca_status or "")
    if status == _WORKING:
        return S.PARTIALLY_FILLED if filled_qty > 0 else S.NEW
    return None if status is None else S(status)


# --- scalars ----------------------------------------------------------------------------------
def decimal(value: Any, name: str) -> Decimal:
    """``value`` (text, int or float) as a finite Decimal; ``name`` goes into the error."""
    if isinstance(value, bool) or value is None or value == "":
        raise MalformedAlpaca(f"{name}: expected a number, got {value!r}")
    if not isinstance(value, (str, int, float, Decimal)):
        raise MalformedAlpaca(f"{name}: expected a number, got {type(value).__name__}")
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MalformedAlpaca(f"{name}: not a number: {str(value)[:40]!r}") from None
    if not result.is_finite():
        raise MalformedAlpaca(f"{name}: not finite: {value!r}")
    return result


def optional_decimal(value: Any, name: str) -> Decimal | None:
    return None if value is None or value == "" else decimal(value, name)


def timestamp(value: Any, name: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text, a datetime or a msgpack ``Timestamp``."""
    if hasattr(value, "to_datetime"):  # msgpack.Timestamp, without importing msgpack here
        value = value.to_datetime()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise MalformedAlpaca(f"{name}: not an ISO 8601 time: {value[:40]!r}") from None
    if not isinstance(value, datetime):
        raise MalformedAlpaca(f"{name}: expected a time, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def optional_timestamp(value: Any, name: str) -> datetime | None:
    return None if value is None or value == "" else timestamp(value, name)


def text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedAlpaca(f"{name}: expected non-empty text, got {type(value).__name__}")
    return value


def mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedAlpaca(f"{name}: expected an object, got {type(value).__name__}")
    return value


# --- orders -----------------------------------------------------------------------------------
def order_key(order: Mapping[str, Any]) -> str:
    """The ``orderId`` clients see: the client order id (ours), else Alpaca's id."""
    return str(order.get("client_order_id") or text(order.get("id"), "order.id"))


def order_update(user_id: str, order: Mapping[str, Any], event: str | None) -> OrderUpdate | None:
    """The ``OrderUpdate`` an Alpaca order (with the event that carried it, None from REST) means.

    None when its status maps to none of the API document's statuses (the caller logs it)."""
    filled_qty = optional_decimal(order.get("filled_qty"), "order.filled_qty") or Decimal(0)
    status = order_status(event, order.get("status"), filled_qty)
    if status is None:
        return None
    side = order.get("side")
    if side not in ORDER_SIDES:
        raise MalformedAlpaca(f"order.side: expected buy or sell, got {side!r}")
    # Notional orders carry no qty until they fill.
    qty = optional_decimal(order.get("qty"), "order.qty")
    created = optional_timestamp(order.get("created_at"), "order.created_at")
    submitted = optional_timestamp(order.get("submitted_at"), "order.submitted_at") or created
    if submitted is None:
        raise MalformedAlpaca("order.submitted_at: missing")
    return OrderUpdate(
        user_id=user_id,
        order_id=order_key(order),
        broker_order_id=text(order.get("id"), "order.id"),
        symbol=text(order.get("symbol"), "order.symbol"),
        side=OrderSide(side),
        type=str(order.get("type") or order.get("order_type") or "market"),
        status=status,
        qty=qty if qty is not None else filled_qty,
        filled_qty=filled_qty,
        filled_avg_price=_positive_or_none(order.get("filled_avg_price"), "order.filled_avg_price"),
        limit_price=optional_decimal(order.get("limit_price"), "order.limit_price"),
        stop_price=optional_decimal(order.get("stop_price"), "order.stop_price"),
        submitted_at=submitted,
        filled_at=optional_timestamp(order.get("filled_at"), "order.filled_at"),
        updated_at=optional_timestamp(order.get("updated_at"), "order.updated_at"),
    )


def _positive_or_none(value: Any, name: str) -> Decimal | None:
    # Alpaca reports filled_avg_price "0" before anything filled.
    result = optional_decimal(value, name)
    return result if result else None


# --- REST snapshots ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RestPosition:
    symbol: str
    qty: Decimal  # signed: negative is short
    avg_entry_price: Decimal
    current_price: Decimal | None
    asset_class: str


def rest_position(raw: Any) -> RestPosition:
    raw = mapping(raw, "position")
    qty = abs(decimal(raw.get("qty"), "position.qty"))
    if raw.get("side") == PositionSide.SHORT:
        qty = -qty
    return RestPosition(
        symbol=text(raw.get("symbol"), "position.symbol"),
        qty=qty,
        avg_entry_price=decimal(raw.get("avg_entry_price"), "position.avg_entry_price"),
        current_price=optional_decimal(raw.get("current_price"), "position.current_price"),
        asset_class=str(raw.get("asset_class") or ""),
    )


@dataclass(frozen=True, slots=True)
class RestAccount:
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
    last_equity: Decimal


def rest_account(raw: Any) -> RestAccount:
    raw = mapping(raw, "account")
    equity = decimal(raw.get("equity"), "account.equity")
    return RestAccount(
        cash=decimal(raw.get("cash"), "account.cash"),
        buying_power=decimal(raw.get("buying_power"), "account.buying_power"),
        equity=equity,
        last_equity=optional_decimal(raw.get("last_equity"), "account.last_equity") or equity,
    )


def clock_is_open(raw: Any) -> bool:
    value = mapping(raw, "clock").get("is_open")
    if not isinstance(value, bool):
        raise MalformedAlpaca(f"clock.is_open: expected true or false, got {value!r}")
    return value


# --- market data ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PriceTick:
    symbol: str
    price: Decimal
    at: datetime | None


def price_tick(raw: Any) -> PriceTick:
    """A trade (``T: "t"``) of the stock data stream; the price must be positive."""
    raw = mapping(raw, "trade")
    price = decimal(raw.get("p"), "trade.p")
    if price <= 0:
        raise MalformedAlpaca(f"trade.p: must be positive, got {price}")
    at = raw.get("t")
    return PriceTick(
        symbol=text(raw.get("S"), "trade.S"),
        price=price,
        at=None if at is None else timestamp(at, "trade.t"),
    )
