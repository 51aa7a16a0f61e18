"""The client's local copy of one user's portfolio, kept from events (sans-I/O).

Rule 1: a data event updates; a ``Snapshot`` replaces the channels it holds and nothing else.
Rule 2: a closed position (quantity 0) leaves the table; orders stay (open and closed today, as the
server's snapshot holds them); trades keep the newest ``max_trades``.
Rule 3: ``seq`` is the offset of the last message applied: the ``resumeFrom`` of the next connection.
A recovered ``RESUMED`` moves it to the server's offset (``to``): nothing in between was for us.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from .. import constants as c
from .events import AccountEvent, ClientEvent, OrderEvent, PositionEvent, Resumed, Snapshot, TradeEvent

MAX_TRADES = 1000


class Portfolio:
    def __init__(self, max_trades: int = MAX_TRADES) -> None:
        self.positions: dict[str, PositionEvent] = {}
        self.orders: dict[str, OrderEvent] = {}
        self.account: AccountEvent | None = None
        self.trades: deque[TradeEvent] = deque(maxlen=max_trades)
        self.seq: int | None = None

    def apply(self, event: ClientEvent) -> bool:
        """Apply one event; returns whether it was a data event or snapshot (control events are ignored)."""
        if isinstance(event, PositionEvent):
            if event.closed:
                self.positions.pop(event.symbol, None)
            else:
                self.positions[event.symbol] = event
        elif isinstance(event, OrderEvent):
            self.orders[event.order_id] = event
        elif isinstance(event, AccountEvent):
            self.account = event
        elif isinstance(event, TradeEvent):
            self.trades.append(event)
        elif isinstance(event, Snapshot):
            self.replace(event)
        else:
            if isinstance(event, Resumed) and event.recovered and (self.seq is None or event.to_seq > self.seq):
                self.seq = event.to_seq
            return False
        if self.seq is None or event.seq > self.seq:
            self.seq = event.seq
        return True

    def replace(self, snapshot: Snapshot) -> None:
        if c.POSITIONS in snapshot.channels:
            self.positions = {p.symbol: p for p in snapshot.positions if not p.closed}
        if c.ORDERS in snapshot.channels:
            self.orders = {o.order_id: o for o in snapshot.orders}
        if c.ACCOUNT in snapshot.channels:
            self.account = snapshot.account
        if c.TRADES in snapshot.channels:
            self.trades.clear()
            self.trades.extend(snapshot.trades)

    def drop(self, channels: Iterable[str]) -> None:
        """Forget channels no longer subscribed: their data would only go stale."""
        channels = set(channels)
        if c.POSITIONS in channels:
            self.positions = {}
        if c.ORDERS in channels:
            self.orders = {}
        if c.ACCOUNT in channels:
            self.account = None
        if c.TRADES in channels:
            self.trades.clear()

    @property
    def open_orders(self) -> list[OrderEvent]:
        return [o for o in self.orders.values() if o.is_open]
