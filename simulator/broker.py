"""The simulated broker's rules for one order: whether it fits the account's buying power when it is
accepted, and the price a market order fills at (slippage against the taker). Pure functions of the
user's book, its open orders and the market's prices; the engine (engine.py) decides when they apply."""

from __future__ import annotations

import random
from decimal import Decimal

from portfolio_ws.constants import OrderSide, OrderStatus

from .orders import Order
from .prices import PriceModel, cents_to_decimal
from .users import User


def opening_qty(user: User, order: Order) -> Decimal:
    """The part of ``order``'s unfilled quantity that would add exposure."""
    position = user.book.positions.get(order.sym)
    held = position.qty if position is not None else Decimal(0)
    if not held or (held > 0) == (order.side == OrderSide.BUY):
        return order.remaining
    return max(Decimal(0), order.remaining - abs(held))


def reference_price(order: Order, prices: PriceModel) -> Decimal:
    return order.limit_price or order.stop_price or prices.price(order.sym)


def affordable(user: User, order: Order, margin: float, prices: PriceModel) -> bool:
    """The broker's check: the order's added exposure fits the buying power left after the
    other open orders that passed this check. A cash account (margin < 2) may not open shorts."""
    opening = opening_qty(user, order)
    if not opening:
        return True
    position = user.book.positions.get(order.sym)
    if order.side == OrderSide.SELL and margin < 2 and (position is None or position.qty <= opening):
        return False
    equity, gross = user.book.valuation(prices.decimals)
    available = user.book.buying_power(equity, gross)
    for other in user.open_orders.values():
        if other is not order and other.status != OrderStatus.PENDING_NEW:  # only orders already accepted
            available -= opening_qty(user, other) * reference_price(other, prices)
    return opening * reference_price(order, prices) <= available


def slipped(side: str, price: Decimal, rng: random.Random) -> Decimal:
    """A market fill near ``price``: half a spread plus impact, always against the taker."""
    slip = 0.0001 + abs(rng.gauss(0.0, 0.0002))
    cents = int(price * 100)
    moved = cents * (1 + slip) if side == OrderSide.BUY else cents * (1 - slip)
    return cents_to_decimal(max(1, round(moved)))
