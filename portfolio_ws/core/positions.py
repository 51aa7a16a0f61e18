"""Position accounting: the one home (issue 12) of how a position's figures follow from its fills
and its price. The simulator (simulator/accounting.py) and the Alpaca feed (feeds/alpaca/state.py)
both use it, so the same fills and price give the same figures whichever feed made them.

Rule 1: a position is a signed quantity (negative is short) and a signed cost basis: what its open
quantity cost, average-cost method, negative for shorts. The cost is kept, never the average
price: an average such as 200/3 cannot be held exactly, the cost it comes from can.
Rule 2: market value = quantity x price x multiplier; unrealized P&L = market value - cost (right
for shorts too); the entry price is cost / (quantity x multiplier), not rounded here (the wire
rounds it once, ``core.wire.money``).
Rule 3: percentages follow the API document (docs/protocol.md, "Numbers"): part / base x 100,
2 decimals, rounded half-up, once, from exact figures; 0 when the base is not positive.
Rule 4: closing part of a position releases that share of its cost, to the cent (half-even), and
realizes the difference; closing all of it releases all of it. Realized + unrealized P&L over a
day is then exactly the change in value.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from ..constants import PositionSide

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


def percent(part: Decimal, base: Decimal) -> Decimal:
    """``part`` as a percentage of ``base``: 2 decimals, half-up; 0 when ``base`` is not positive."""
    if base <= 0:
        return ZERO
    return (part * HUNDRED / base).quantize(CENT, rounding=ROUND_HALF_UP)


def side_of(qty: Decimal) -> PositionSide:
    return PositionSide.SHORT if qty < 0 else PositionSide.LONG


def entry_price(qty: Decimal, cost: Decimal, multiplier: Decimal = ONE) -> Decimal:
    """The average entry price of an open position, positive for longs and shorts; 0 when flat."""
    return cost / (qty * multiplier) if qty else ZERO


@dataclass(frozen=True, slots=True)
class Figures:
    """A position's figures as ``PositionUpdate`` carries them: quantity and market value unsigned."""

    quantity: Decimal
    side: PositionSide
    entry_price: Decimal
    market_value: Decimal
    unrealized_pnl: Decimal
    unrealized_pnl_percent: Decimal


def figures(qty: Decimal, cost: Decimal, price: Decimal, multiplier: Decimal = ONE) -> Figures:
    """Signed ``qty`` whose open quantity cost ``cost`` (signed), valued at ``price``."""
    market = qty * price * multiplier
    unrealized = market - cost
    return Figures(abs(qty), side_of(qty), entry_price(qty, cost, multiplier), abs(market), unrealized,
                   percent(unrealized, abs(cost)))


def close_part(qty: Decimal, cost: Decimal, closing: Decimal, price: Decimal,
               multiplier: Decimal = ONE) -> tuple[Decimal, Decimal]:
    """Close ``closing`` (0 < closing <= |qty|) of signed ``qty`` costing ``cost`` at ``price``:
    ``(realized P&L, cost released)``; the cost left is ``cost - released``."""
    held = abs(qty)
    if closing == held:
        released = cost
    else:
        released = (cost * closing / held).quantize(CENT, rounding=ROUND_HALF_EVEN)
    direction = 1 if qty > 0 else -1
    return direction * closing * price * multiplier - released, released
