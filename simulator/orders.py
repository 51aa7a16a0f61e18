"""Orders: their state, the legal status transitions (as a table), and their ``OrderUpdate`` events.

Rule 1: an order's status only changes through ``Order.move_to``, which checks ``TRANSITIONS``.
Rule 2: every order is a day order: whatever is still open at the close expires.
Rule 3: quantities are whole shares held as ``Decimal``; ``filled_cost`` is the exact sum of
price x quantity over the fills, so the average fill price is derived, never accumulated.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Mapping

from portfolio_ws.constants import OPEN_ORDER_STATUSES, ORDER_SIDES, OrderSide, OrderStatus
from portfolio_ws.core.events import OrderUpdate
from portfolio_ws.errors import UsageError

S = OrderStatus

# The order lifecycle of the API document. The key None is "not yet submitted".
# pending_new -> rejected is the broker's buying-power check; new/accepted orders can be canceled
# by their owner or expire at the close; partially_filled repeats while fills keep coming.
TRANSITIONS: Final[Mapping[str | None, frozenset[OrderStatus]]] = {
    None: frozenset({S.PENDING_NEW}),
    S.PENDING_NEW: frozenset({S.NEW, S.REJECTED, S.CANCELED}),
    S.NEW: frozenset({S.ACCEPTED, S.REJECTED, S.CANCELED, S.EXPIRED}),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}

_AVG_STEP = Decimal("0.0001")


class IllegalTransition(UsageError):
    """The simulator tried to move an order along an edge ``TRANSITIONS`` does not have."""


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


class Order:
    """One order's mutable state inside the simulator (events are its frozen snapshots)."""

    __slots__ = ("order_id", "broker_order_id", "user", "symbol", "sym", "side", "type", "qty",
                 "limit_price", "stop_price", "strategy_id", "status", "filled_qty", "filled_cost",
                 "fills", "submitted_at", "filled_at", "updated_at", "triggered")

    def __init__(self, order_id: str, broker_order_id: str, user: int, symbol: str, sym: int,
                 side: str, type_: str, qty: Decimal, submitted_at: float,
                 limit_price: Decimal | None = None, stop_price: Decimal | None = None,
                 strategy_id: str | None = None) -> None:
        if side not in ORDER_SIDES:
            raise UsageError(f"order side must be buy or sell, got {side!r}")
        if type_ not in ("market", "limit", "stop"):
            raise UsageError(f"order type must be market, limit or stop, got {type_!r}")
        if qty <= 0 or qty != qty.to_integral_value():
            raise UsageError(f"order quantity must be a positive whole number, got {qty}")
        if (type_ == "limit") != (limit_price is not None) or (type_ == "stop") != (stop_price is not None):
            raise UsageError("limit orders need limit_price, stop orders stop_price, and only they")
        self.order_id = order_id
        self.broker_order_id = broker_order_id
        self.user = user
        self.symbol = symbol
        self.sym = sym
        self.side = OrderSide(side)
        self.type = type_
        self.qty = qty
        self.limit_price = limit_price
        self.stop_price = stop_price
        self.strategy_id = strategy_id
        self.status: OrderStatus | None = None
        self.filled_qty = Decimal(0)
        self.filled_cost = Decimal(0)
        self.fills = 0
        self.submitted_at = submitted_at
        self.filled_at: float | None = None
        self.updated_at = submitted_at
        self.triggered = type_ != "stop"  # a stop order acts only once its stop price trades

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES

    @property
    def working(self) -> bool:
        """Accepted by the venue and not done: it may fill."""
        return self.status in (S.ACCEPTED, S.PARTIALLY_FILLED)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def sign(self) -> int:
        return 1 if self.side == OrderSide.BUY else -1

    def move_to(self, status: OrderStatus, at: float) -> None:
        """Change status along a legal edge; raises ``IllegalTransition`` otherwise."""
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"order {self.order_id}: {self.status} -> {status} is not allowed")
        self.status = status
        self.updated_at = at

    def record_fill(self, qty: Decimal, price: Decimal, at: float) -> None:
        """Book a fill of ``qty`` at ``price`` and move to partially_filled or filled."""
        if not self.working or not 0 < qty <= self.remaining:
            raise UsageError(f"order {self.order_id}: cannot fill {qty} (status {self.status}, "
                             f"remaining {self.remaining})")
        self.filled_qty += qty
        self.filled_cost += qty * price
        self.fills += 1
        self.filled_at = at
        self.move_to(S.FILLED if self.filled_qty == self.qty else S.PARTIALLY_FILLED, at)

    def crosses(self, price: Decimal) -> bool:
        """Whether a print at ``price`` lets this (working, triggered) order trade."""
        if self.type != "limit":
            return True
        assert self.limit_price is not None
        return price <= self.limit_price if self.side == "buy" else price >= self.limit_price

    def triggers(self, price: Decimal) -> bool:
        """Whether a print at ``price`` elects this stop order (buy stops above, sell stops below)."""
        assert self.stop_price is not None
        return price >= self.stop_price if self.side == "buy" else price <= self.stop_price

    def event(self, user_id: str) -> OrderUpdate:
        assert self.status is not None
        avg = None
        if self.filled_qty:
            avg = (self.filled_cost / self.filled_qty).quantize(_AVG_STEP, rounding=ROUND_HALF_UP)
        return OrderUpdate(
            user_id=user_id, order_id=self.order_id, symbol=self.symbol, side=self.side,
            type=self.type, status=self.status, qty=self.qty, filled_qty=self.filled_qty,
            submitted_at=utc(self.submitted_at), broker_order_id=self.broker_order_id,
            filled_avg_price=avg, limit_price=self.limit_price, stop_price=self.stop_price,
            filled_at=None if self.filled_at is None else utc(self.filled_at),
            updated_at=utc(self.updated_at),
        )
