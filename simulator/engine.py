"""The simulation core: users trading a simulated market, producing portfolio events in time order.

Rule 1: sans-I/O. Time goes in (``advance(to)``), events come out; no clock is read, nothing is
awaited. All randomness comes from ``random.Random`` instances seeded from ``settings.seed``.
Rule 2: one agenda (a heap of timed actions: prints, order steps, decisions, account slots, the
open and the close) is worked through in time order; ties break in scheduling order.
Rule 3: per-print work is O(holders of that symbol): positions are indexed by symbol.
Rule 4: fills only happen while the session is open. At the close every working day order that was
submitted before it expires, and each account's equity is fixed as its last-close equity.
Orders submitted while closed are queued and may trade from the next open.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

from portfolio_ws.constants import OrderSide, OrderStatus
from portfolio_ws.core.events import Event, TradeExecuted
from portfolio_ws.errors import ConfigError, UsageError
from portfolio_ws.settings import SimulatorSettings
from portfolio_ws.settings_rules import check_value

from portfolio_ws import market_calendar as cal
from .accounting import Position
from .broker import affordable, slipped
from .orders import Order, utc
from .prices import PriceModel, cents_to_decimal, intensity
from .strategies import Intent, decide
from .universe import universe
from .users import User, make_user

# Agenda entry kinds.
_OPEN, _CLOSE, _PRINT, _ORDER_STEP, _MARKET_FILL, _DECIDE, _ACCOUNT, _CANCEL = range(8)

# A strategy stops opening orders after this many fills in a day; with at most MAX_OPEN_ORDERS
# open orders of at most MAX_FILLS_PER_ORDER fills each, a user never exceeds 50 trades a day.
TRADE_BUDGET = 40
MAX_OPEN_ORDERS = 3
MAX_FILLS_PER_ORDER = 3
PARTIAL_FILL_PROBABILITY = 0.3
# Seconds within which a user's first decision of the day comes: after the opening bell, and
# when a simulation starts (or a user joins) during a session.
FIRST_DECISION_AT_OPEN = 90.0
FIRST_DECISION_AT_START = 8.0
# Account updates are at least this far apart (so never more than 10 a minute).
MIN_ACCOUNT_GAP = 6.05
TimedEvent = tuple[float, Event]


def _validate(s: SimulatorSettings) -> None:
    """The simulator section's rules (portfolio_ws.settings_rules), for settings built without load_settings."""
    for f in dataclasses.fields(s):
        check_value(f"simulator.{f.name}", getattr(s, f.name))


class Simulation:
    """Simulated accounts for ``user_ids``, starting at ``start`` (epoch seconds or aware datetime).

    Call ``initial_events()`` once for the starting state, then ``advance(to)`` repeatedly with
    non-decreasing times; publish what they return, in order.
    """

    def __init__(self, user_ids: Iterable[str], settings: SimulatorSettings, start: float | datetime) -> None:
        _validate(settings)
        self.settings = settings
        self.now = start.timestamp() if isinstance(start, datetime) else float(start)
        specs = universe(settings.symbols, settings.seed)
        self.prices = PriceModel(specs, random.Random(f"{settings.seed}/prices"), settings.tick_rate)
        self.users: list[User] = []
        self._by_id: dict[str, User] = {}
        self._holders: list[dict[int, Position]] = [{} for _ in specs]
        self._working: list[list[Order]] = [[] for _ in specs]
        self._day_open = list(self.prices.decimals)
        self._last_print = [self.now] * len(specs)
        self._agenda: list[tuple[float, int, int, Any]] = []
        self._scheduled = 0  # tie-breaker: an int, not itertools.count, so checkpoints save it
        self._out: list[TimedEvent] = []
        self.market_open = False
        self.session = cal.next_session(self.now)
        self._schedule(self.session.close, _CLOSE, None)
        if self.session.contains(self.now):
            self._begin_session(self.now, gap=False)
        else:
            self._schedule(self.session.open, _OPEN, None)
        for user_id in dict.fromkeys(user_ids):
            self._add_user(user_id)

    def _user(self, user_id: str) -> User:
        user = self._by_id.get(user_id)
        if user is None:
            raise UsageError(f"user {user_id!r} is not simulated")
        return user

    # --- input -------------------------------------------------------------------------------
    def advance(self, to: datetime) -> list[Event]:
        """Run the market up to ``to`` (inclusive); the events that happened, in time order."""
        return [event for _, event in self.advance_to(to.timestamp())]

    def advance_to(self, to: float, limit: int | None = None) -> list[TimedEvent]:
        """``advance`` in epoch seconds, each event paired with the simulated time it happened.

        With ``limit``, stop early once at least that many events are out (``now`` then stays
        at the last action run, before ``to``); call again to go on. The sequence is the same."""
        agenda, handlers, out = self._agenda, self._handlers, self._out
        while agenda and agenda[0][0] <= to:
            if limit is not None and len(out) >= limit:
                break
            t, _, kind, arg = heapq.heappop(agenda)
            self.now = t
            handlers[kind](self, t, arg)
        else:
            self.now = max(self.now, to)
        self._out = []
        return out

    def add_user(self, user_id: str) -> list[Event]:
        """Start simulating ``user_id`` now; returns its starting state (as ``state_events``)."""
        if user_id in self._by_id:
            raise UsageError(f"user {user_id!r} is already simulated")
        self._add_user(user_id)
        return self.state_events(user_id)

    def submit_order(self, user_id: str, symbol: str, side: str, type_: str, qty: Decimal | int,
                     limit_price: Decimal | None = None, stop_price: Decimal | None = None) -> str:
        """Place an order for ``user_id`` at the current time; returns its id. Its ``pending_new``
        event comes out of the next ``advance``."""
        user = self._user(user_id)
        if symbol not in self.prices.index:
            raise UsageError(f"unknown symbol {symbol!r}")
        intent = Intent(self.prices.index[symbol], side, type_, Decimal(qty), limit_price, stop_price)
        return self._submit(user, intent, self.now).order_id

    def cancel_order(self, user_id: str, order_id: str) -> bool:
        """Ask to cancel an open order now; False when it is already closed."""
        order = self._user(user_id).open_orders.get(order_id)
        if order is None:
            return False
        self._cancel(self.now, order)
        return True

    # --- output ------------------------------------------------------------------------------
    def initial_events(self) -> list[Event]:
        """Every user's current state: open positions, open orders, then the account."""
        return [event for user in self.users for event in self.state_events(user.user_id)]

    def state_events(self, user_id: str) -> list[Event]:
        user = self._user(user_id)
        prices = self.prices.decimals
        events: list[Event] = [p.event(user_id, prices[p.sym]) for p in user.book.positions.values()]
        events.extend(order.event(user_id) for order in user.open_orders.values() if order.status)
        events.append(user.book.event(user_id, prices, utc(self.now)))
        return events

    @property
    def next_action_at(self) -> float | None:
        """When the next scheduled action happens (epoch seconds), None if nothing is scheduled."""
        return self._agenda[0][0] if self._agenda else None

    # --- the agenda --------------------------------------------------------------------------
    def _schedule(self, t: float, kind: int, arg: Any) -> None:
        self._scheduled += 1
        heapq.heappush(self._agenda, (t, self._scheduled, kind, arg))

    def _add_user(self, user_id: str) -> None:
        user = make_user(user_id, len(self.users), self.settings, self.prices, self.now)
        self.users.append(user)
        self._by_id[user_id] = user
        for sym, position in user.book.positions.items():
            self._holders[sym][user.idx] = position
        if user.rng.random() < 0.5:  # a resting limit order placed before the start
            sym = user.rng.randrange(len(self.prices))
            price = self.prices.cents(sym)
            limit = cents_to_decimal(max(1, round(price * (1 - user.rng.uniform(0.005, 0.03)))))
            qty = Decimal(max(1, int(user.book.last_close_equity * Decimal("0.02") / limit)))
            order = self._new_order(user, Intent(sym, OrderSide.BUY, "limit", qty, limit_price=limit),
                                    self.now - user.rng.uniform(60.0, 1800.0))
            order.move_to(OrderStatus.NEW, order.submitted_at)
            order.move_to(OrderStatus.ACCEPTED, order.submitted_at)
            self._working[sym].append(order)
        if self.market_open:
            self._start_user_day(user, self.now, FIRST_DECISION_AT_START)

    def _begin_session(self, t: float, gap: bool) -> None:
        self.market_open = True
        session, prices = self.session, self.prices
        users, out = self.users, self._out
        for sym in range(len(prices)):
            if gap:  # the opening print carries the overnight move to every holder
                price = prices.gap(sym)
                for idx, position in self._holders[sym].items():
                    out.append((t, position.event(users[idx].user_id, price)))
            self._last_print[sym] = t
            self._schedule(t + prices.next_gap(sym, (t - session.open) / session.seconds) * 0.5, _PRINT, sym)
        self._day_open = list(prices.decimals)
        # The opening rush: everyone's first decision comes within 90 s of the bell; a simulation
        # starting mid-session (a demo) shows trading within seconds.
        for user in self.users:
            self._start_user_day(user, t, FIRST_DECISION_AT_OPEN if gap else FIRST_DECISION_AT_START)

    def _start_user_day(self, user: User, t: float, first_within: float) -> None:
        """Reset the day's counters and schedule the first decision (within ``first_within`` s)
        and the first account update."""
        user.trades_today = 0
        close = self.session.close
        first = t + user.rng.uniform(1.0, first_within)
        if first < close and user.orders_per_day > 0:
            self._schedule(first, _DECIDE, (user, True))
        self._schedule_account(user, t + user.rng.uniform(0.5, user.account_gap))

    def _schedule_account(self, user: User, due: float) -> None:
        if due >= self.session.close:
            return
        user.account_token += 1
        user.account_due = due
        self._schedule(due, _ACCOUNT, (user, user.account_token))

    # --- handlers ----------------------------------------------------------------------------
    def _on_open(self, t: float, _: Any) -> None:
        self._begin_session(t, gap=True)

    def _on_close(self, t: float, _: Any) -> None:
        out, closing = self._out, self.session
        self.market_open = False
        for user in self.users:
            for order in list(user.open_orders.values()):
                if order.is_open and order.status != OrderStatus.PENDING_NEW and order.submitted_at < closing.close:
                    order.move_to(OrderStatus.EXPIRED, t)
                    del user.open_orders[order.order_id]
                    out.append((t, order.event(user.user_id)))
        for sym, orders in enumerate(self._working):
            self._working[sym] = [o for o in orders if o.working]
        prices, at = self.prices.decimals, utc(t)
        for user in self.users:
            account = user.book.event(user.user_id, prices, at)
            out.append((t, account))
            user.book.last_close_equity = account.equity  # the daily rollover
            user.account_token += 1
            user.account_due = float("inf")
            user.account_last = t
        self.session = cal.next_session(t)
        self._schedule(self.session.open, _OPEN, None)
        self._schedule(self.session.close, _CLOSE, None)

    def _on_print(self, t: float, sym: int) -> None:
        prices, session = self.prices, self.session
        price = prices.step(sym, t - self._last_print[sym])
        self._last_print[sym] = t
        users, out = self.users, self._out
        for idx, position in self._holders[sym].items():
            out.append((t, position.event(users[idx].user_id, price)))
        if self._working[sym]:
            self._match(sym, price, t)
        following = t + prices.next_gap(sym, (t - session.open) / session.seconds)
        if following < session.close:
            self._schedule(following, _PRINT, sym)

    def _match(self, sym: int, price: Decimal, t: float) -> None:
        """Working orders of ``sym`` against a print: elect stops, fill markets and crossed limits."""
        still: list[Order] = []
        for order in self._working[sym]:
            if not order.working:
                continue
            if not order.triggered:
                if not order.triggers(price):
                    still.append(order)
                    continue
                order.triggered = True
            if order.type == "limit":
                assert order.limit_price is not None
                if order.crosses(price):
                    self._fill(order, price, t)
            else:
                self._fill(order, slipped(order.side, price, self.users[order.user].rng), t)
            if order.working:
                still.append(order)
        self._working[sym] = still

    def _on_order_step(self, t: float, order: Order) -> None:
        user = self.users[order.user]
        if order.status == OrderStatus.PENDING_NEW:
            if not affordable(user, order, self.settings.margin, self.prices):
                order.move_to(OrderStatus.REJECTED, t)
                del user.open_orders[order.order_id]
                self._out.append((t, order.event(user.user_id)))
                return
            order.move_to(OrderStatus.NEW, t)
            self._out.append((t, order.event(user.user_id)))
            self._schedule(t + user.rng.uniform(0.02, 0.1), _ORDER_STEP, order)
        elif order.status == OrderStatus.NEW:
            order.move_to(OrderStatus.ACCEPTED, t)
            self._out.append((t, order.event(user.user_id)))
            self._working[order.sym].append(order)
            if order.type == "market" and self.market_open:
                self._schedule(t + user.rng.uniform(0.05, 0.3), _MARKET_FILL, order)

    def _on_market_fill(self, t: float, order: Order) -> None:
        if not (order.working and self.market_open):
            return  # canceled, done, or the close came first: the next print fills it
        self._fill(order, slipped(order.side, self.prices.price(order.sym), self.users[order.user].rng), t)
        if order.working:
            self._schedule(t + self.users[order.user].rng.uniform(0.2, 1.5), _MARKET_FILL, order)

    def _on_decide(self, t: float, arg: tuple[User, bool]) -> None:
        user, opening = arg
        if not self.market_open:
            return
        if user.trades_today < TRADE_BUDGET:
            if len(user.open_orders) >= MAX_OPEN_ORDERS:
                resting = [o for o in user.open_orders.values() if o.working and o.type != "market"]
                if resting:
                    self._cancel(t, resting[0])  # the oldest, to make room
            else:
                intent = decide(user.profile, user.book, self.prices.decimals, self._day_open, user.rng,
                                opening=opening, shorts_allowed=self.settings.margin >= 2)
                if intent is not None:
                    self._submit(user, intent, t)
        session = self.session
        if user.orders_per_day > 0:
            mean = session.seconds / user.orders_per_day / intensity((t - session.open) / session.seconds)
            following = t + mean * user.rng.uniform(0.5, 1.5)
            if following < session.close:
                self._schedule(following, _DECIDE, (user, False))

    def _on_account(self, t: float, arg: tuple[User, int]) -> None:
        user, token = arg
        if token != user.account_token:
            return  # rescheduled or the day closed
        self._out.append((t, user.book.event(user.user_id, self.prices.decimals, utc(t))))
        user.account_last = t
        self._schedule_account(user, t + user.account_gap * user.rng.uniform(0.8, 1.2))

    def _on_cancel(self, t: float, order: Order) -> None:
        if order.is_open:
            self._cancel(t, order)

    _handlers = (_on_open, _on_close, _on_print, _on_order_step, _on_market_fill, _on_decide,
                 _on_account, _on_cancel)

    # --- orders and fills --------------------------------------------------------------------
    def _new_order(self, user: User, intent: Intent, t: float) -> Order:
        order_id, broker_id = user.next_order_id()
        order = Order(order_id, broker_id, user.idx, self.prices.specs[intent.sym].symbol, intent.sym,
                      intent.side, intent.type, intent.qty, t, intent.limit_price, intent.stop_price,
                      user.strategy_id)
        order.move_to(OrderStatus.PENDING_NEW, t)
        user.open_orders[order_id] = order
        return order

    def _submit(self, user: User, intent: Intent, t: float) -> Order:
        order = self._new_order(user, intent, t)
        self._out.append((t, order.event(user.user_id)))
        self._schedule(t + user.rng.uniform(0.02, 0.08), _ORDER_STEP, order)
        if intent.cancel_after is not None:
            self._schedule(t + intent.cancel_after, _CANCEL, order)
        return order

    def _cancel(self, t: float, order: Order) -> None:
        user = self.users[order.user]
        order.move_to(OrderStatus.CANCELED, t)
        del user.open_orders[order.order_id]
        self._out.append((t, order.event(user.user_id)))

    def _fill(self, order: Order, price: Decimal, t: float) -> None:
        user = self.users[order.user]
        rng, remaining = user.rng, order.remaining
        qty = remaining
        if order.fills < MAX_FILLS_PER_ORDER - 1 and remaining >= 20 and rng.random() < PARTIAL_FILL_PROBABILITY:
            part = Decimal(int(remaining * Decimal(repr(rng.uniform(0.2, 0.7)))))
            if 0 < part < remaining:
                qty = part
        at = utc(t)
        order.record_fill(qty, price, t)
        if not order.is_open:
            del user.open_orders[order.order_id]
        signed = qty if order.side == OrderSide.BUY else -qty
        position, realized = user.book.fill(order.sym, order.symbol, signed, price, at, order.strategy_id)
        holders = self._holders[order.sym]
        if position.qty:
            holders[user.idx] = position
        else:
            holders.pop(user.idx, None)
        user.trades_today += 1
        uid, out = user.user_id, self._out
        out.append((t, order.event(uid)))
        out.append((t, TradeExecuted(user_id=uid, trade_id=user.next_trade_id(), symbol=order.symbol,
                                     side=order.side, quantity=qty, price=price, executed_at=at,
                                     pnl=realized, strategy_id=order.strategy_id, order_id=order.order_id)))
        out.append((t, position.event(uid, self.prices.price(order.sym))))
        due = max(t + 0.25, user.account_last + MIN_ACCOUNT_GAP)
        if due < user.account_due:  # the fill's account update comes soon, never more often
            self._schedule_account(user, due)
