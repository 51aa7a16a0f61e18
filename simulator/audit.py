"""The auditor: replays a stream of portfolio events and checks what a trader would check.

Rule 1: it trusts nothing but the events. Each account is rebuilt from its starting state and its
fills, and every event is compared with what the auditor computed itself.
Rule 2: the first broken rule raises ``AuditError`` naming the rule, the user and the event.
The invariants (Decimal, exact to the cent unless noted):
  position quantity = sum of fills; unrealized = quantity x price - cost basis (shorts too);
  market value = |quantity| x price; entry = cost / quantity (to 1/100 cent); realized P&L on each
  reducing fill = closed quantity x (price - average entry), None on opening fills; a position that
  goes flat is sent with quantity 0; cash moves by -quantity x price per fill;
  equity = cash + long market value - short market value = portfolio value; buying power =
  max(0, margin x equity - gross value); day P&L = equity - last-close equity, and the last-close
  equity only changes to the equity of the account update before it (the rollover); each fill is
  followed at once by its position update (quantity 0 when it went flat);
  order statuses only move along ``orders.TRANSITIONS``; filled quantity = sum of the order's
  trades; fills happen only during a session; limit fills respect the limit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Iterable

from portfolio_ws.constants import OrderSide, PositionSide
from portfolio_ws.core.events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted

from portfolio_ws import market_calendar as cal
from .orders import TRANSITIONS

CENT = Decimal("0.01")
BASIS = Decimal("0.0001")
ZERO = Decimal(0)


class AuditError(AssertionError):
    """An event broke an accounting or lifecycle rule."""


@dataclass
class _Position:
    qty: Decimal
    cost: Decimal


@dataclass
class _Order:
    status: str
    qty: Decimal
    side: str
    type: str
    limit_price: Decimal | None
    filled_qty: Decimal = ZERO
    traded_qty: Decimal = ZERO
    traded_cost: Decimal = ZERO
    avg: Decimal | None = None


@dataclass
class _Account:
    cash: Decimal | None = None
    positions: dict[str, _Position] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, _Order] = field(default_factory=dict)
    base: Decimal | None = None
    last_equity: Decimal | None = None
    # After a fill: the symbol whose position update must be the account's very next event.
    expect: str | None = None


class Auditor:
    """Feed it ``snapshot(initial events)`` then ``check(event)`` for each event, in order."""

    def __init__(self, margin: Decimal = Decimal(2)) -> None:
        self.margin = margin
        self.accounts: dict[str, _Account] = {}
        self.statuses: Counter[str] = Counter()
        self.transitions: Counter[tuple[str | None, str]] = Counter()
        self.events = 0

    def _fail(self, rule: str, event: Event) -> None:
        raise AuditError(f"{rule}: {event!r}")

    def snapshot(self, events: Iterable[Event]) -> None:
        """Take starting state: open positions (cost = quantity x entry), open orders, the account."""
        for event in events:
            account = self.accounts.setdefault(event.user_id, _Account())
            if isinstance(event, PositionUpdate):
                sign = -1 if event.side == PositionSide.SHORT else 1
                account.positions[event.symbol] = _Position(sign * event.quantity, sign * event.quantity * event.entry_price)
                self._check_position(account, event)
            elif isinstance(event, OrderUpdate):
                account.orders[event.order_id] = _Order(
                    event.status, event.qty, event.side, event.type, event.limit_price, event.filled_qty,
                    event.filled_qty, event.filled_qty * (event.filled_avg_price or ZERO), event.filled_avg_price)
                self.statuses[event.status] += 1
            elif isinstance(event, AccountUpdate):
                account.cash = event.cash
                self._check_account(account, event)
            else:
                self._fail("a starting state holds no trades", event)

    def check(self, event: Event) -> None:
        self.events += 1
        account = self.accounts.get(event.user_id)
        if account is None or account.cash is None:
            self._fail("event for a user without a starting state", event)
            return
        if account.expect is not None:
            if not isinstance(event, PositionUpdate) or event.symbol != account.expect:
                self._fail(f"a fill of {account.expect} must be followed by its position update", event)
            account.expect = None
        if isinstance(event, PositionUpdate):
            self._check_position(account, event)
        elif isinstance(event, OrderUpdate):
            self._check_order(account, event)
        elif isinstance(event, TradeExecuted):
            self._check_trade(account, event)
        else:
            self._check_account(account, event)

    # --- positions ---------------------------------------------------------------------------
    def _check_position(self, account: _Account, e: PositionUpdate) -> None:
        position = account.positions.get(e.symbol)
        if position is None:
            self._fail("update for a position the account does not hold", e)
            return
        price = e.current_price
        if price < CENT or price != price.quantize(CENT):
            self._fail("price off the cent tick or below $0.01", e)
        account.prices[e.symbol] = price
        if e.quantity != abs(position.qty):
            self._fail(f"quantity is not the sum of fills ({position.qty})", e)
        if position.qty and e.side != (PositionSide.SHORT if position.qty < 0 else PositionSide.LONG):
            self._fail("side does not match the signed quantity", e)
        if e.market_value != abs(position.qty) * price:
            self._fail("market value != quantity x price", e)
        unrealized = position.qty * price - position.cost
        if e.unrealized_pnl != unrealized:
            self._fail(f"unrealized P&L != quantity x price - cost ({unrealized})", e)
        if position.qty:
            entry = position.cost / position.qty  # not rounded: the wire rounds it, once
            if e.entry_price != entry:
                self._fail(f"entry price != cost / quantity ({entry})", e)
            percent = (unrealized * 100 / abs(position.cost)).quantize(CENT, rounding=ROUND_HALF_UP)
            if e.unrealized_pnl_percent != percent:
                self._fail(f"unrealized percent != P&L / cost ({percent})", e)
        else:
            del account.positions[e.symbol]  # the flat position's last word

    # --- orders and trades -------------------------------------------------------------------
    def _check_order(self, account: _Account, e: OrderUpdate) -> None:
        order = account.orders.get(e.order_id)
        before = order.status if order is not None else None
        if e.status not in TRANSITIONS[before]:
            self._fail(f"illegal transition {before} -> {e.status}", e)
        self.statuses[e.status] += 1
        self.transitions[(before, e.status)] += 1
        if order is None:
            order = _Order(e.status, e.qty, e.side, e.type, e.limit_price)
            account.orders[e.order_id] = order
        if e.qty != order.qty or e.side != order.side or e.type != order.type:
            self._fail("an order's quantity, side or type changed", e)
        if not order.filled_qty <= e.filled_qty <= e.qty:
            self._fail("filled quantity went down or past the order quantity", e)
        if (e.status == "filled") != (e.filled_qty == e.qty):
            self._fail("filled status and filled quantity disagree", e)
        if e.status == "partially_filled" and not 0 < e.filled_qty < e.qty:
            self._fail("partially_filled without a partial quantity", e)
        if (e.filled_at is None) != (e.filled_qty == 0):
            self._fail("filled_at present exactly when something filled", e)
        order.status = e.status
        order.filled_qty = e.filled_qty
        order.avg = e.filled_avg_price
        if order.traded_qty == e.filled_qty:  # no fill announced: the average must already agree
            self._check_average(order, e)

    def _check_average(self, order: _Order, e: Event) -> None:
        expected = None
        if order.traded_qty:
            expected = (order.traded_cost / order.traded_qty).quantize(BASIS, rounding=ROUND_HALF_UP)
        if order.avg != expected:
            self._fail(f"average fill price != sum(price x qty) / qty ({expected})", e)

    def _check_trade(self, account: _Account, e: TradeExecuted) -> None:
        if cal.session_at(e.executed_at.timestamp()) is None:
            self._fail("fill outside the regular session", e)
        order = account.orders.get(e.order_id or "")
        if order is None or order.status not in ("partially_filled", "filled"):
            self._fail("trade without an order update announcing its fill", e)
            return
        if e.side != order.side or e.quantity <= 0:
            self._fail("trade side differs from its order, or a non-positive quantity", e)
        if order.limit_price is not None and (
                e.price > order.limit_price if e.side == OrderSide.BUY else e.price < order.limit_price):
            self._fail("limit order filled through its limit", e)
        order.traded_qty += e.quantity
        order.traded_cost += e.quantity * e.price
        if order.traded_qty != order.filled_qty:
            self._fail(f"order filled quantity {order.filled_qty} != sum of its trades {order.traded_qty}", e)
        self._check_average(order, e)
        signed = e.quantity if e.side == OrderSide.BUY else -e.quantity
        position = account.positions.setdefault(e.symbol, _Position(ZERO, ZERO))
        realized = _apply(position, signed, e.price)
        if e.pnl != realized:
            self._fail(f"realized P&L should be {realized}", e)
        assert account.cash is not None
        account.cash -= signed * e.price
        account.expect = e.symbol

    # --- the account -------------------------------------------------------------------------
    def _check_account(self, account: _Account, e: AccountUpdate) -> None:
        if e.cash != account.cash:
            self._fail(f"cash is not starting cash moved by fills ({account.cash})", e)
        net = gross = ZERO
        for symbol, position in account.positions.items():
            price = account.prices.get(symbol)
            if price is None:
                self._fail(f"no price seen for held {symbol}", e)
                return
            net += position.qty * price
            gross += abs(position.qty) * price
        equity = e.cash + net
        if e.equity != equity or e.portfolio_value != equity:
            self._fail(f"equity != cash + long value - short value ({equity})", e)
        power = max(ZERO, (self.margin * equity - gross).quantize(CENT, rounding=ROUND_DOWN))
        if e.buying_power != power:
            self._fail(f"buying power != max(0, margin x equity - gross) ({power})", e)
        base = e.equity - e.day_pnl
        if account.base is not None and base != account.base and base != account.last_equity:
            self._fail("last-close equity changed to something other than the previous equity", e)
        percent = (e.day_pnl * 100 / base).quantize(CENT, rounding=ROUND_HALF_UP) if base > 0 else ZERO
        if e.day_pnl_percent != percent:
            self._fail(f"day P&L percent != day P&L / last-close equity ({percent})", e)
        account.base = base
        account.last_equity = e.equity


def _apply(position: _Position, signed: Decimal, price: Decimal) -> Decimal | None:
    """Average-cost booking of a fill; the realized P&L of its closing part, None if none."""
    realized: Decimal | None = None
    if position.qty and (signed > 0) != (position.qty > 0):
        held = abs(position.qty)
        closing = min(abs(signed), held)
        released = position.cost if closing == held else (
            (position.cost * closing / held).quantize(CENT, rounding=ROUND_HALF_EVEN))
        direction = 1 if position.qty > 0 else -1
        realized = direction * closing * price - released
        position.cost -= released
        step = closing if signed > 0 else -closing
        position.qty += step
        signed -= step
    position.qty += signed
    position.cost += signed * price
    return realized
