"""Simulated users: one account each, its strategy, its pacing, and its starting portfolio.

Rule 1: every user has its own ``random.Random`` seeded from (seed, user id), so a user's life does
not depend on which other users exist or in which order they were added.
Rule 2: the starting portfolio holds 3 to 10 positions, about a fifth of them short (none in a cash
account), each 4-14% of equity (scaled down by the margin), entered days ago at prices around
today's, with cash set so that equity is exactly the drawn starting equity.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from decimal import Decimal

from portfolio_ws.settings import SimulatorSettings

from .accounting import Book, Position
from .orders import Order
from .prices import PriceModel, cents_to_decimal
from .strategies import PROFILES, Profile

DAY = 86400.0


class User:
    """A simulated trader. The engine owns and mutates it; ``open_orders`` is keyed by order id."""

    __slots__ = ("user_id", "idx", "rng", "book", "profile", "strategy_id", "open_orders",
                 "order_seq", "trade_seq", "trades_today", "orders_per_day", "account_gap",
                 "account_due", "account_last", "account_token")

    def __init__(self, user_id: str, idx: int, rng: random.Random, book: Book, profile: Profile,
                 orders_per_day: float, account_gap: float) -> None:
        self.user_id = user_id
        self.idx = idx
        self.rng = rng
        self.book = book
        self.profile = profile
        self.strategy_id = f"strategy-{profile.name}"
        self.open_orders: dict[str, Order] = {}
        self.order_seq = 0
        self.trade_seq = 0
        self.trades_today = 0
        self.orders_per_day = orders_per_day
        self.account_gap = account_gap  # mean seconds between account updates
        self.account_due = float("inf")  # when the next account update is scheduled
        self.account_last = float("-inf")  # when the last one was emitted
        self.account_token = 0  # bumps on reschedule; stale heap entries are skipped

    def next_order_id(self) -> tuple[str, str]:
        self.order_seq += 1
        return f"sim-{self.user_id}-o{self.order_seq}", f"simbroker-{self.user_id}-{self.order_seq}"

    def next_trade_id(self) -> str:
        self.trade_seq += 1
        return f"sim-{self.user_id}-t{self.trade_seq}"


def make_user(user_id: str, idx: int, settings: SimulatorSettings, prices: PriceModel, now: float) -> User:
    """A new user with its starting portfolio valued at the current prices."""
    rng = random.Random(f"{settings.seed}/user/{user_id}")
    equity = Decimal(round(settings.starting_equity * 4 ** rng.uniform(-1.0, 1.0)))
    margin = Decimal(repr(settings.margin))
    book = Book(Decimal(0), margin)
    shorts = settings.margin >= 2
    scale = min(1.0, settings.margin / 2)
    count = min(len(prices), rng.randint(3, 10))
    net = Decimal(0)
    for sym in sorted(rng.sample(range(len(prices)), count)):
        price = prices.price(sym)
        sign = -1 if shorts and rng.random() < 0.2 else 1
        value = float(equity) * rng.uniform(0.04, 0.14) * scale
        qty = Decimal(max(1, int(value / float(price))) * sign)
        entry = cents_to_decimal(max(1, round(prices.cents(sym) * (1 + rng.gauss(0.0, 0.08)))))
        opened = datetime.fromtimestamp(now - rng.uniform(1.0, 60.0) * DAY, timezone.utc)
        profile_name = rng.choice(PROFILES).name
        book.positions[sym] = Position(sym, prices.specs[sym].symbol, qty, qty * entry, opened,
                                       f"strategy-{profile_name}")
        net += qty * price
    book.cash = equity - net
    book.last_close_equity = equity
    profile = rng.choice(PROFILES)
    orders_per_day = settings.orders_per_day * 2 ** rng.uniform(-1.0, 1.0)
    account_gap = 60.0 / (settings.account_updates_per_minute * rng.uniform(0.5, 1.5))
    return User(user_id, idx, rng, book, profile, orders_per_day, account_gap)
