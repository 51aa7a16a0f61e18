"""The price model: geometric Brownian motion per symbol, printed on the cent tick.

Rule 1: the random walk runs in float (log-space GBM, exact for any step length); every price
that leaves this module is a ``Decimal`` quantized to the cent and at least $0.01.
Rule 2: time only advances during the regular session (trading-time GBM); each session open adds
one overnight gap with a quarter of a day's variance.
Rule 3: prints arrive with a U-shaped intraday intensity (busier at the open and the close), and
the gap between prints is bounded (0.5 to 1.5 times the mean), so every minute of a session sees
prints and no minute sees a burst.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Sequence

from .universe import SymbolSpec

TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600
# Overnight variance as a fraction of one session's variance (close-to-open moves are smaller).
OVERNIGHT_VARIANCE = 0.25
# The U curve: multiplier at the open/close and at midday; the curve averages 1 over a session.
_U_EDGE = 0.6 + 2.4
_U_NORM = 0.6 + 2.4 / 3


def intensity(x: float) -> float:
    """Print-rate multiplier at fraction ``x`` (0 = open, 1 = close) of the session.

    ``(0.6 + 2.4 (2x-1)^2) / 1.4``: 2.14 at the open and close, 0.43 at midday, mean 1.
    """
    x = min(max(x, 0.0), 1.0)
    u = 2.0 * x - 1.0
    return (0.6 + 2.4 * u * u) / _U_NORM


PEAK_INTENSITY = _U_EDGE / _U_NORM
TROUGH_INTENSITY = 0.6 / _U_NORM


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


class PriceModel:
    """Prices of a universe. ``rng`` is the model's own ``random.Random``; ``rate`` scales every
    symbol's print rate."""

    def __init__(self, specs: Sequence[SymbolSpec], rng: random.Random, rate: float = 1.0) -> None:
        self.specs = tuple(specs)
        self._rng = rng
        self._level = [s.price for s in self.specs]  # the continuous path, float
        self._cents = [max(1, round(s.price * 100)) for s in self.specs]
        self._decimal = [cents_to_decimal(c) for c in self._cents]
        self._mean_gap = [60.0 / (s.ticks_per_minute * rate) for s in self.specs]
        self.index = {s.symbol: i for i, s in enumerate(self.specs)}

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def decimals(self) -> list[Decimal]:
        """Last printed prices by symbol index (the live list: read, never mutate)."""
        return self._decimal

    def price(self, i: int) -> Decimal:
        """Last printed price of symbol ``i``."""
        return self._decimal[i]

    def cents(self, i: int) -> int:
        return self._cents[i]

    def _move(self, i: int, years: float) -> Decimal:
        spec = self.specs[i]
        z = self._rng.gauss(0.0, 1.0)
        sigma = spec.volatility
        level = self._level[i] * math.exp((spec.drift - 0.5 * sigma * sigma) * years
                                          + sigma * math.sqrt(years) * z)
        self._level[i] = level
        cents = max(1, round(level * 100))
        if cents != self._cents[i]:
            self._cents[i] = cents
            self._decimal[i] = cents_to_decimal(cents)
        return self._decimal[i]

    def step(self, i: int, seconds: float) -> Decimal:
        """Advance symbol ``i`` by ``seconds`` of session time; returns the new printed price."""
        return self._move(i, max(seconds, 0.0) / TRADING_SECONDS_PER_YEAR)

    def gap(self, i: int) -> Decimal:
        """The overnight move applied at a session open."""
        return self._move(i, OVERNIGHT_VARIANCE * 6.5 * 3600 / TRADING_SECONDS_PER_YEAR)

    def next_gap(self, i: int, x: float) -> float:
        """Seconds until symbol ``i``'s next print, at session fraction ``x``."""
        return self._mean_gap[i] / intensity(x) * self._rng.uniform(0.5, 1.5)
