"""Accounting: positions, cash, equity, buying power and day P&L, all in ``Decimal``.

Rule 1: a position's signed quantity is the sum of its fills; ``cost`` is the signed cost basis of
the open quantity (average-cost method). Prices are cents and quantities whole shares, so cost,
cash and market values are exact to the cent. The arithmetic of a position (entry price, market
value, unrealized P&L and its percent, what a partial close releases and realizes) is
``portfolio_ws.core.positions``', the one the Alpaca feed uses too.
Rule 2: unrealized P&L = quantity x price - cost, right for shorts too (quantity and cost < 0).
Hence realized + unrealized over a day always equals the change in equity.
Rule 3: equity = cash + long market value - short market value. Buying power is a Reg-T style
margin model: ``max(0, margin x equity - gross market value)`` (margin 2: 50% initial margin on
longs and shorts; margin 1: a cash account). Open orders are not netted out of the reported figure.
Rule 4: day P&L is against the equity fixed at the last close (the daily rollover).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Iterable

from portfolio_ws.constants import PositionSide
from portfolio_ws.core import positions as accounting
from portfolio_ws.core.events import AccountUpdate, PositionUpdate

CENT = accounting.CENT
ZERO = accounting.ZERO


class Position:
    """One symbol's open position in one account. ``qty`` < 0 is short."""

    __slots__ = ("sym", "symbol", "qty", "cost", "opened_at", "strategy_id", "_entry", "_side")

    def __init__(self, sym: int, symbol: str, qty: Decimal, cost: Decimal, opened_at: datetime | None,
                 strategy_id: str | None) -> None:
        self.sym = sym
        self.symbol = symbol
        self.qty = qty
        self.cost = cost
        self.opened_at = opened_at
        self.strategy_id = strategy_id
        self._entry = accounting.entry_price(qty, cost)
        self._side = accounting.side_of(qty)

    @property
    def entry_price(self) -> Decimal:
        """Average entry price (cost / quantity), positive for longs and shorts."""
        return self._entry

    @property
    def side(self) -> PositionSide:
        """long/short; a flat position keeps the side it had, for its closing event."""
        return self._side

    def apply_fill(self, qty: Decimal, price: Decimal, at: datetime, strategy_id: str | None) -> Decimal | None:
        """Book a fill of signed ``qty`` (buy > 0) at ``price``; returns the realized P&L, or None
        when the fill only opens or adds. A fill larger than a position closes it and opens the
        other side with the remainder (its P&L is the closing part's)."""
        realized: Decimal | None = None
        if self.qty and (qty > 0) != (self.qty > 0):
            closing = min(abs(qty), abs(self.qty))
            realized, released = accounting.close_part(self.qty, self.cost, closing, price)
            self.cost -= released
            self.qty += closing if qty > 0 else -closing
            qty += -closing if qty > 0 else closing
        if qty:
            if not self.qty:
                self.opened_at = at
                self.strategy_id = strategy_id
            self.qty += qty
            self.cost += qty * price
        if self.qty:
            self._entry = accounting.entry_price(self.qty, self.cost)
            self._side = accounting.side_of(self.qty)
        return realized

    def event(self, user_id: str, price: Decimal) -> PositionUpdate:
        """The position as the API shows it, valued at ``price``."""
        if not self.qty:
            return PositionUpdate(user_id, self.symbol, ZERO, price, self._entry, ZERO, ZERO, ZERO,
                                  self._side, self.strategy_id, self.opened_at)
        f = accounting.figures(self.qty, self.cost, price)
        return PositionUpdate(user_id, self.symbol, f.quantity, price, f.entry_price, f.unrealized_pnl,
                              f.unrealized_pnl_percent, f.market_value, f.side, self.strategy_id, self.opened_at)


class Book:
    """One account: cash, open positions by symbol index, and the equity at the last close."""

    __slots__ = ("cash", "positions", "last_close_equity", "margin")

    def __init__(self, cash: Decimal, margin: Decimal) -> None:
        self.cash = cash
        self.positions: dict[int, Position] = {}
        self.last_close_equity = ZERO
        self.margin = margin

    def fill(self, sym: int, symbol: str, qty: Decimal, price: Decimal, at: datetime,
             strategy_id: str | None) -> tuple[Position, Decimal | None]:
        """Apply a fill of signed ``qty``: cash moves by ``-qty x price``. Returns the position
        (quantity 0 when the fill flattened it; it is then dropped from ``positions``) and the
        realized P&L."""
        position = self.positions.get(sym)
        if position is None:
            position = Position(sym, symbol, ZERO, ZERO, None, strategy_id)
            self.positions[sym] = position
        realized = position.apply_fill(qty, price, at, strategy_id)
        self.cash -= qty * price
        if not position.qty:
            del self.positions[sym]
        return position, realized

    def exposure(self, price_of: Iterable[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
        """(net, gross) market value of ``(signed qty, price)`` pairs."""
        net = gross = ZERO
        for qty, price in price_of:
            value = qty * price
            net += value
            gross += abs(value)
        return net, gross

    def valuation(self, prices: list[Decimal]) -> tuple[Decimal, Decimal]:
        """(equity, gross market value) with ``prices`` indexed by symbol."""
        net, gross = self.exposure((p.qty, prices[p.sym]) for p in self.positions.values())
        return self.cash + net, gross

    def buying_power(self, equity: Decimal, gross: Decimal) -> Decimal:
        """``max(0, margin x equity - gross)``, cut down to the cent."""
        return max(ZERO, (self.margin * equity - gross).quantize(CENT, rounding=ROUND_DOWN))

    def event(self, user_id: str, prices: list[Decimal], at: datetime) -> AccountUpdate:
        equity, gross = self.valuation(prices)
        day_pnl = equity - self.last_close_equity
        base = self.last_close_equity
        percent = accounting.percent(day_pnl, base)
        return AccountUpdate(user_id=user_id, equity=equity, buying_power=self.buying_power(equity, gross),
                             cash=self.cash, portfolio_value=equity, day_pnl=day_pnl,
                             day_pnl_percent=percent, timestamp=at)
