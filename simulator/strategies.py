"""Strategies: what a simulated trader decides to do when it is its turn to act.

Rule 1: a strategy is data (a ``Profile``: order-type mix, sizes, price offsets, cancel habits)
plus one pure function, ``decide``, that turns the account's state, the prices and the user's own
``random.Random`` into one ``Intent`` (or None). It never touches the engine's state.
Rule 2: about 2% of opening intents are "fat-finger" sized (50x), so the broker's buying-power check
rejects some orders for real reasons.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from portfolio_ws.constants import OrderSide

from .accounting import Book
from .prices import cents_to_decimal

FAT_FINGER_PROBABILITY = 0.02
FAT_FINGER_FACTOR = 50


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    # Weights of market, limit and stop orders.
    type_weights: tuple[float, float, float]
    # Chance that a decision trims or closes a holding rather than opening or adding.
    reduce_probability: float
    # Opening order size as a fraction of the account's equity (uniform in the range).
    size: tuple[float, float]
    # Limit price distance from the last print, as a fraction, on the passive side
    # (negative: a marketable limit).
    limit_offset: tuple[float, float]
    # Stop price distance from the last print, on the adverse side.
    stop_offset: tuple[float, float]
    # Chance that the owner cancels a limit/stop order if it is still open after ``cancel_after``.
    cancel_probability: float
    cancel_after: tuple[float, float]
    # Opening side: +1 follows today's move (momentum), -1 fades it, 0 mostly buys.
    trend: int


PROFILES: tuple[Profile, ...] = (
    Profile("momentum", (0.5, 0.25, 0.25), 0.35, (0.02, 0.06), (-0.0005, 0.002), (0.002, 0.01),
            0.2, (120.0, 1200.0), 1),
    Profile("mean-reversion", (0.2, 0.7, 0.1), 0.4, (0.02, 0.05), (0.0005, 0.004), (0.003, 0.012),
            0.4, (300.0, 3600.0), -1),
    Profile("rebalance", (0.45, 0.45, 0.1), 0.5, (0.01, 0.04), (0.0, 0.002), (0.003, 0.01),
            0.15, (600.0, 3600.0), 0),
)
PROFILE_BY_NAME = {p.name: p for p in PROFILES}


@dataclass(frozen=True, slots=True)
class Intent:
    """An order the trader wants placed. ``cancel_after``: seconds until its owner cancels it."""

    sym: int
    side: str
    type: str
    qty: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    cancel_after: float | None = None


def _price_away(price: Decimal, fraction: float, up: bool) -> Decimal:
    cents = int(price * 100)
    moved = cents * (1 + fraction) if up else cents * (1 - fraction)
    return cents_to_decimal(max(1, round(moved)))


def decide(profile: Profile, book: Book, prices: Sequence[Decimal], day_open: Sequence[Decimal],
           rng: random.Random, opening: bool = False, shorts_allowed: bool = True) -> Intent | None:
    """One trading decision. ``opening``: the day's first decision, always a modest market order."""
    n = len(prices)
    held = list(book.positions.values())
    if held and rng.random() < profile.reduce_probability:
        position = rng.choice(held)
        sym = position.sym
        side = OrderSide.SELL if position.qty > 0 else OrderSide.BUY
        qty = Decimal(max(1, math.ceil(abs(int(position.qty)) * rng.choice((0.25, 0.5, 1.0)))))
    else:
        if held and rng.random() < 0.5:
            position = rng.choice(held)
            sym = position.sym
            side = OrderSide.BUY if position.qty > 0 else OrderSide.SELL
        else:
            sym = rng.randrange(n)
            up = prices[sym] >= day_open[sym]
            if profile.trend == 0:
                side = OrderSide.BUY if rng.random() < 0.75 else OrderSide.SELL
            else:
                side = OrderSide.BUY if up == (profile.trend > 0) else OrderSide.SELL
            current = book.positions.get(sym)
            if side == OrderSide.SELL and not shorts_allowed and (current is None or current.qty <= 0):
                side = OrderSide.BUY
        equity = book.last_close_equity
        low, high = profile.size
        fraction = low if opening else rng.uniform(low, high)
        qty = Decimal(max(1, int(equity * Decimal(repr(fraction)) / prices[sym])))
        if not opening and rng.random() < FAT_FINGER_PROBABILITY:
            qty *= FAT_FINGER_FACTOR
    price = prices[sym]
    kind = "market" if opening else rng.choices(("market", "limit", "stop"), profile.type_weights)[0]
    if kind == "limit":
        offset = rng.uniform(*profile.limit_offset)
        limit = _price_away(price, offset, up=side == OrderSide.SELL)
        return Intent(sym, side, kind, qty, limit_price=limit, cancel_after=_cancel(profile, rng))
    if kind == "stop":
        offset = rng.uniform(*profile.stop_offset)
        stop = _price_away(price, offset, up=side == OrderSide.BUY)
        return Intent(sym, side, kind, qty, stop_price=stop, cancel_after=_cancel(profile, rng))
    return Intent(sym, side, kind, qty)


def _cancel(profile: Profile, rng: random.Random) -> float | None:
    if rng.random() < profile.cancel_probability:
        return rng.uniform(*profile.cancel_after)
    return None
