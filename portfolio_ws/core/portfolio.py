"""Per-user portfolio state, kept from the event stream itself, for snapshots and ``GET /api/portfolio``.

Rule: the state is exactly what the events said, nothing derived. "Today" is the New York trading
day of the newest timestamped event (an account, order or trade time), so a simulated or replayed
day behaves like a live one. Closed orders and trades of earlier days are pruned on a new day.
"""

from __future__ import annotations

from collections import deque
from datetime import date, datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from .. import constants as c
from . import wire
from .events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted

NEW_YORK = ZoneInfo("America/New_York")
SNAPSHOT_TRADES = 100


def trading_day(moment: datetime) -> date:
    return moment.astimezone(NEW_YORK).date()


class PortfolioState:
    __slots__ = ("positions", "orders", "account", "trades", "day")

    def __init__(self) -> None:
        self.positions: dict[str, PositionUpdate] = {}
        self.orders: dict[str, OrderUpdate] = {}
        self.account: AccountUpdate | None = None
        self.trades: deque[TradeExecuted] = deque(maxlen=SNAPSHOT_TRADES)
        self.day: date | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, PositionUpdate):
            if event.quantity == 0:
                self.positions.pop(event.symbol, None)
            else:
                self.positions[event.symbol] = event
        elif isinstance(event, OrderUpdate):
            self._see(event.last_time)
            if event.is_open or self.day is None or trading_day(event.last_time) >= self.day:
                self.orders[event.order_id] = event
            else:  # closed on an earlier day: neither open nor closed today
                self.orders.pop(event.order_id, None)
        elif isinstance(event, AccountUpdate):
            self._see(event.timestamp)
            self.account = event
        else:
            self._see(event.executed_at)
            if self.day is None or trading_day(event.executed_at) == self.day:
                self.trades.append(event)

    def repeats(self, event: Event) -> bool:
        """True for an event the state already went past: a trade it holds, or an order update
        older than (or the same as) the order's. A publish retried after Redis lost its record of
        the first try (restarted empty) is delivered a second time under a new offset; this drops it."""
        if isinstance(event, TradeExecuted):
            return any(t.trade_id == event.trade_id for t in self.trades)
        if isinstance(event, OrderUpdate):
            held = self.orders.get(event.order_id)
            return held is not None and (event.last_time < held.last_time or event == held)
        return False  # positions and the account are absolute: a repeat changes nothing

    def _see(self, moment: datetime) -> None:
        day = trading_day(moment)
        if self.day is not None and day <= self.day:
            return
        self.day = day
        self.orders = {k: o for k, o in self.orders.items() if o.is_open or trading_day(o.last_time) >= day}
        self.trades = deque((t for t in self.trades if trading_day(t.executed_at) >= day), maxlen=SNAPSHOT_TRADES)

    def snapshot(self, channels: Iterable[str]) -> dict[str, Any]:
        """The wire ``data`` of a snapshot holding just ``channels`` (in channel order)."""
        wanted = set(channels)
        data: dict[str, Any] = {}
        if c.POSITIONS in wanted:
            data[c.POSITIONS] = [wire.position_payload(p) for _, p in sorted(self.positions.items())]
        if c.ORDERS in wanted:
            orders = sorted(self.orders.values(), key=lambda o: (o.submitted_at, o.order_id))
            data[c.ORDERS] = [wire.order_payload(o) for o in orders]
        if c.ACCOUNT in wanted:
            data[c.ACCOUNT] = wire.account_payload(self.account) if self.account else None
        if c.TRADES in wanted:
            data[c.TRADES] = [wire.trade_payload(t) for t in self.trades]
        return data
