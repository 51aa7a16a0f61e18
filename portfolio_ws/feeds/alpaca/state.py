"""One Alpaca account's portfolio as the feed knows it, and the events each change produces.

Rule 1: sans-I/O. Raw Alpaca dicts and ``now`` go in, events come out: no sockets, no clock, no SDK.
Rule 2: events only for real changes. Each output is compared with the last one emitted for its
key (symbol, order id, the account), so re-syncs and replayed frames are silent unless something
moved.
Rule 3: a fill is applied once. Execution ids are remembered (bounded) and a repeat is dropped whole.
Rule 4: Alpaca is the truth for quantities (``position_qty``, REST positions) and cash (REST);
between syncs the cost basis and cash are carried forward here, so a reducing fill carries its
realized P&L and equity follows every price tick. The arithmetic (cost, entry price, P&L and
percents) is ``core.positions``', the one the simulator uses too.
Rule 5: every input is validated before anything changes: a malformed frame changes nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from ...constants import ORDER_SIDES, OrderSide
from ...core import positions as accounting
from ...core.events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted
from . import mapping as m

log = logging.getLogger(__name__)

ZERO = Decimal(0)
MAX_ORDERS = 1000


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


@dataclass(slots=True)
class Holding:
    qty: Decimal  # signed: negative is short
    cost: Decimal  # signed cost basis of qty (multiplier included): qty x average entry x multiplier
    price: Decimal
    asset_class: str = "us_equity"
    opened_at: datetime | None = None
    # The price came from the data stream since the last REST sync.
    streamed_price: bool = False

    @property
    def multiplier(self) -> Decimal:
        return m.MULTIPLIERS.get(self.asset_class, m.ONE)

    @property
    def market_value(self) -> Decimal:
        return self.qty * self.price * self.multiplier


@dataclass(frozen=True, slots=True)
class Applied:
    """What one trade update did: the events to publish, and whether REST must be re-read."""

    events: list[Event] = field(default_factory=list)
    resync: bool = False
    filled: bool = False


class AccountState:
    """The portfolio of the Alpaca account mapped to ``user_id``. Every event it makes is theirs."""

    def __init__(self, user_id: str, *, remember_executions: int = 10_000) -> None:
        self.user_id = user_id
        # Bumped by every applied fill: a REST answer requested before a fill is stale.
        self.version = 0
        self._holdings: dict[str, Holding] = {}
        self._cash: Decimal | None = None
        self._buying_power = ZERO
        self._last_equity = ZERO
        self._orders: dict[str, OrderUpdate] = {}
        self._positions_sent: dict[str, PositionUpdate] = {}
        self._account_sent: AccountUpdate | None = None
        self._executions: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_executions

    # --- queries ------------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """True once the account's balances came from REST (account updates need them)."""
        return self._cash is not None

    def holds(self, symbol: str) -> bool:
        holding = self._holdings.get(symbol)
        return holding is not None and holding.qty != 0

    def streamed_symbols(self) -> frozenset[str]:
        """Symbols held that the stock data stream prices."""
        return frozenset(
            s for s, h in self._holdings.items() if h.qty != 0 and h.asset_class in m.STREAMED_ASSET_CLASSES
        )

    def position_qty(self, symbol: str) -> Decimal:
        holding = self._holdings.get(symbol)
        return holding.qty if holding else ZERO

    # --- trading stream -----------------------------------------------------------------------
    def apply_trade_update(self, data: Any, now: datetime) -> Applied:
        """Apply one ``trade_updates`` payload (the frame's ``data``). Raises ``MalformedAlpaca``."""
        data = m.mapping(data, "trade_update")
        event = str(data.get("event") or "")
        order = m.mapping(data.get("order"), "trade_update.order")
        update = m.order_update(self.user_id, order, event)
        if update is None:
            log.debug("ignoring trade update event %r (order status %r)", event, order.get("status"))
        fill_events: list[Event] = []
        filled = False
        if event in m.FILL_EVENTS:
            fill_events = self._apply_fill(data, order)
            if not fill_events:
                return Applied()  # a repeat of a fill already applied
            filled = True
        events: list[Event] = []
        if update is not None and self._is_news(update):
            self._remember_order(update)
            events.append(update)
        events.extend(fill_events)
        return Applied(events, resync=filled or event in m.RESYNC_EVENTS, filled=filled)

    def _apply_fill(self, data: Mapping[str, Any], order: Mapping[str, Any]) -> list[Event]:
        executed_at = m.timestamp(data.get("timestamp"), "trade_update.timestamp")
        symbol = m.text(order.get("symbol"), "order.symbol")
        side = order.get("side")
        if side not in ORDER_SIDES:
            raise m.MalformedAlpaca(f"order.side: expected buy or sell, got {side!r}")
        side = OrderSide(side)
        order_id = m.order_key(order)
        filled_total = m.optional_decimal(order.get("filled_qty"), "order.filled_qty") or ZERO
        trade_id = str(data.get("execution_id") or f"{order.get('id')}:{filled_total}")
        if trade_id in self._executions:
            log.debug("dropping repeated execution %s of %s", trade_id, self.user_id)
            return []
        qty = m.optional_decimal(data.get("qty"), "trade_update.qty")
        if qty is None:
            before = self._orders.get(order_id)
            qty = filled_total - (before.filled_qty if before else ZERO)
        if qty <= 0:
            raise m.MalformedAlpaca(f"trade_update.qty: a fill must be positive, got {qty}")
        price = m.optional_decimal(data.get("price"), "trade_update.price") or m.optional_decimal(
            order.get("filled_avg_price"), "order.filled_avg_price"
        )
        if price is None or price <= 0:
            raise m.MalformedAlpaca(f"trade_update.price: a fill price must be positive, got {price}")
        position_qty = m.optional_decimal(data.get("position_qty"), "trade_update.position_qty")

        signed = qty if side == OrderSide.BUY else -qty
        holding = self._holdings.get(symbol)
        held = holding.qty if holding else ZERO
        before_qty = position_qty - signed if position_qty is not None else held
        after_qty = position_qty if position_qty is not None else held + signed
        # A REST read that landed between the fill and its stream event already holds it.
        already_held = position_qty is not None and held == position_qty
        if before_qty != held and not already_held:
            log.info("%s %s: held %s but Alpaca says %s before the fill; trusting Alpaca",
                     self.user_id, symbol, held, before_qty)
        multiplier = holding.multiplier if holding else m.ONE
        # The cost of before_qty, when what is held is on its side (scaled if Alpaca's count differs).
        known_cost = None
        if holding and held and _sign(held) == _sign(before_qty):
            known_cost = holding.cost if before_qty == held else holding.cost * before_qty / held

        pnl: Decimal | None = None
        cost = known_cost
        if before_qty and _sign(signed) != _sign(before_qty) and known_cost is not None:
            closing = min(qty, abs(before_qty))
            pnl, released = accounting.close_part(before_qty, known_cost, closing, price, multiplier)
            cost = known_cost - released

        opened = not before_qty or _sign(after_qty) != _sign(before_qty)
        if not after_qty:
            cost = ZERO
        elif opened or cost is None:
            cost = after_qty * price * multiplier
        elif abs(after_qty) > abs(before_qty):
            cost += (after_qty - before_qty) * price * multiplier

        # Everything validated: now change state.
        self._remember_execution(trade_id)
        self.version += 1
        if not already_held:
            self._apply_position(symbol, holding, after_qty, cost, price, executed_at if opened else None)
            if self._cash is not None:
                self._cash -= signed * price * multiplier
        events: list[Event] = [
            TradeExecuted(
                user_id=self.user_id,
                trade_id=trade_id,
                symbol=symbol,
                side=side,
                quantity=qty,
                price=price,
                executed_at=executed_at,
                pnl=pnl,
                order_id=order_id,
            )
        ]
        position = self._position_event(symbol)
        if position is not None:
            events.append(position)
        return events

    def _apply_position(self, symbol: str, holding: Holding | None, qty: Decimal, cost: Decimal,
                        price: Decimal, opened_at: datetime | None) -> None:
        self._holdings[symbol] = Holding(
            qty=qty,
            cost=cost,
            price=price,
            asset_class=holding.asset_class if holding else "us_equity",
            opened_at=opened_at or (holding.opened_at if holding else None),
            streamed_price=holding.streamed_price if holding else False,
        )

    # --- data stream --------------------------------------------------------------------------
    def apply_price(self, symbol: str, price: Decimal) -> list[Event]:
        """A new last-trade price for ``symbol``: the position update, if this account holds it.

        Equity changes too; the caller asks ``account_update`` when its throttle allows."""
        holding = self._holdings.get(symbol)
        if holding is None or not holding.qty:
            return []
        holding.price = price
        holding.streamed_price = True
        position = self._position_event(symbol)
        return [position] if position is not None else []

    def account_update(self, now: datetime) -> AccountUpdate | None:
        """The account recomputed (equity = cash + market values), if it changed since last sent."""
        if self._cash is None:
            return None
        equity = self._cash + sum((h.market_value for h in self._holdings.values()), ZERO)
        day_pnl = equity - self._last_equity
        day_pct = accounting.percent(day_pnl, self._last_equity)
        event = AccountUpdate(
            user_id=self.user_id,
            equity=equity,
            buying_power=self._buying_power,
            cash=self._cash,
            portfolio_value=equity,
            day_pnl=day_pnl,
            day_pnl_percent=day_pct,
            timestamp=now,
        )
        sent = self._account_sent
        if sent is not None and replace(event, timestamp=sent.timestamp) == sent:
            return None
        self._account_sent = event
        return event

    # --- REST ---------------------------------------------------------------------------------
    def apply_rest(
        self, account: Any, positions: Any, now: datetime, *, keep_stream_prices: bool
    ) -> list[Event]:
        """Reconcile with a REST read of the account and its positions; events for what changed.

        ``keep_stream_prices``: the data stream is live, so its prices beat REST's. A malformed
        account or position list raises ``MalformedAlpaca`` and changes nothing; one malformed
        position is logged and that symbol left as it was."""
        balances = m.rest_account(account)
        if not isinstance(positions, list):
            raise m.MalformedAlpaca(f"positions: expected a list, got {type(positions).__name__}")
        parsed: dict[str, m.RestPosition] = {}
        unreadable: set[str] = set()
        for raw in positions:
            try:
                position = m.rest_position(raw)
            except m.MalformedAlpaca as exc:
                log.warning("%s: skipping a malformed REST position: %s", self.user_id, exc)
                if isinstance(raw, Mapping) and isinstance(raw.get("symbol"), str):
                    unreadable.add(raw["symbol"])
                continue
            parsed[position.symbol] = position

        events: list[Event] = []
        for symbol in sorted((set(self._holdings) | set(parsed)) - unreadable):
            rest = parsed.get(symbol)
            old = self._holdings.get(symbol)
            if rest is None or not rest.qty:
                self._holdings.pop(symbol, None)
            else:
                keep = keep_stream_prices and old is not None and old.streamed_price
                price = old.price if keep and old else rest.current_price
                if price is None:
                    price = old.price if old else rest.avg_entry_price
                same_side = old is not None and old.qty and _sign(old.qty) == _sign(rest.qty)
                asset_class = rest.asset_class or "us_equity"
                self._holdings[symbol] = Holding(
                    qty=rest.qty,
                    cost=rest.qty * rest.avg_entry_price * m.MULTIPLIERS.get(asset_class, m.ONE),
                    price=price,
                    asset_class=asset_class,
                    opened_at=old.opened_at if same_side and old else None,
                    streamed_price=keep,
                )
            position_event = self._position_event(symbol)
            if position_event is not None:
                events.append(position_event)
        self._cash = balances.cash
        self._buying_power = balances.buying_power
        self._last_equity = balances.last_equity
        account_event = self.account_update(now)
        if account_event is not None:
            events.append(account_event)
        return events

    def apply_orders(self, orders: Any) -> list[Event]:
        """Reconcile with REST orders (open, and closed today); events for those that changed.

        An order older (``updated_at``) than what was already sent for it is ignored, whichever
        of REST and the stream said it first."""
        if not isinstance(orders, list):
            raise m.MalformedAlpaca(f"orders: expected a list, got {type(orders).__name__}")
        events: list[Event] = []
        for raw in orders:
            try:
                update = m.order_update(self.user_id, m.mapping(raw, "order"), None)
            except m.MalformedAlpaca as exc:
                log.warning("%s: skipping a malformed REST order: %s", self.user_id, exc)
                continue
            if update is None:
                continue
            if not self._is_news(update):
                continue
            self._remember_order(update)
            events.append(update)
        return events

    # --- internals ----------------------------------------------------------------------------
    def _position_event(self, symbol: str) -> PositionUpdate | None:
        holding = self._holdings.get(symbol)
        sent = self._positions_sent.get(symbol)
        if holding is None or not holding.qty:
            self._holdings.pop(symbol, None)
            if sent is None:
                return None
            del self._positions_sent[symbol]
            return replace(
                sent,
                quantity=ZERO,
                current_price=holding.price if holding else sent.current_price,
                unrealized_pnl=ZERO,
                unrealized_pnl_percent=ZERO,
                market_value=ZERO,
            )
        f = accounting.figures(holding.qty, holding.cost, holding.price, holding.multiplier)
        event = PositionUpdate(
            user_id=self.user_id,
            symbol=symbol,
            quantity=f.quantity,
            current_price=holding.price,
            entry_price=f.entry_price,
            unrealized_pnl=f.unrealized_pnl,
            unrealized_pnl_percent=f.unrealized_pnl_percent,
            market_value=f.market_value,  # unsigned like quantity; side says short
            side=f.side,
            opened_at=holding.opened_at,
        )
        if event == sent:
            return None
        self._positions_sent[symbol] = event
        return event

    def _is_news(self, update: OrderUpdate) -> bool:
        """Not older than what was sent for the order (REST and the stream race), and different
        from it in more than ``updated_at`` (which clients never see; kept silently)."""
        held = self._orders.get(update.order_id)
        if held is None:
            return True
        if held.updated_at and update.updated_at and update.updated_at < held.updated_at:
            return False
        if replace(update, updated_at=held.updated_at) == held:
            self._orders[update.order_id] = update
            return False
        return True

    def _remember_execution(self, trade_id: str) -> None:
        self._executions[trade_id] = None
        while len(self._executions) > self._remember:
            self._executions.popitem(last=False)

    def _remember_order(self, update: OrderUpdate) -> None:
        self._orders[update.order_id] = update
        if len(self._orders) > MAX_ORDERS:
            closed = sorted((o for o in self._orders.values() if not o.is_open), key=lambda o: o.last_time)
            for order in closed[: len(self._orders) - MAX_ORDERS]:
                del self._orders[order.order_id]
