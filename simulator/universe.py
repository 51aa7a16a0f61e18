"""The tradable universe: which symbols exist, their starting prices and their GBM parameters.

Rule 1: the first 30 symbols are liquid US large caps with plausible prices, annual drift and
annual volatility; beyond them, synthetic tickers are generated deterministically from the seed.
Rule 2: ``ticks_per_minute`` is the symbol's mean print rate over a session; the intraday curve in
``prices`` shapes it (busier at the open and close).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    price: float  # starting price, dollars
    drift: float  # annual expected log-return (mu)
    volatility: float  # annual volatility (sigma)
    ticks_per_minute: float  # mean prints a minute over a session


# symbol, price, drift, volatility, mean ticks a minute (the most liquid names print most often)
_DEFAULT: tuple[tuple[str, float, float, float, float], ...] = (
    ("AAPL", 230.00, 0.10, 0.25, 30),
    ("MSFT", 420.00, 0.10, 0.24, 30),
    ("NVDA", 140.00, 0.20, 0.50, 30),
    ("AMZN", 200.00, 0.12, 0.32, 28),
    ("GOOGL", 170.00, 0.10, 0.30, 26),
    ("META", 580.00, 0.12, 0.38, 26),
    ("TSLA", 250.00, 0.10, 0.60, 30),
    ("AVGO", 170.00, 0.15, 0.45, 22),
    ("JPM", 220.00, 0.08, 0.22, 18),
    ("V", 290.00, 0.08, 0.20, 14),
    ("UNH", 560.00, 0.07, 0.24, 12),
    ("XOM", 115.00, 0.05, 0.26, 16),
    ("MA", 500.00, 0.08, 0.21, 12),
    ("JNJ", 155.00, 0.04, 0.16, 12),
    ("PG", 165.00, 0.05, 0.16, 12),
    ("HD", 390.00, 0.07, 0.23, 12),
    ("COST", 900.00, 0.10, 0.21, 10),
    ("WMT", 80.00, 0.08, 0.19, 16),
    ("NFLX", 700.00, 0.12, 0.40, 14),
    ("AMD", 150.00, 0.15, 0.52, 24),
    ("CRM", 280.00, 0.08, 0.34, 12),
    ("BAC", 40.00, 0.06, 0.27, 20),
    ("KO", 68.00, 0.04, 0.15, 12),
    ("PEP", 165.00, 0.04, 0.17, 10),
    ("ORCL", 170.00, 0.10, 0.32, 14),
    ("ADBE", 500.00, 0.08, 0.33, 10),
    ("INTC", 22.00, 0.00, 0.45, 20),
    ("DIS", 95.00, 0.05, 0.28, 12),
    ("CSCO", 55.00, 0.05, 0.20, 14),
    ("QCOM", 165.00, 0.08, 0.36, 12),
)
DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = tuple(SymbolSpec(*row) for row in _DEFAULT)

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _synthetic_ticker(n: int) -> str:
    """``n``-th synthetic ticker, 4 letters starting with X (none collide with the real list)."""
    out = ""
    for _ in range(3):
        n, r = divmod(n, 26)
        out = _LETTERS[r] + out
    return "X" + out


def universe(count: int, seed: int) -> tuple[SymbolSpec, ...]:
    """The first ``count`` symbols: the default list, then seeded synthetic tickers."""
    if count < 1:
        raise ValueError("the universe needs at least one symbol")
    if count <= len(DEFAULT_SYMBOLS):
        return DEFAULT_SYMBOLS[:count]
    rng = random.Random(f"{seed}/universe")
    extra = []
    for n in range(count - len(DEFAULT_SYMBOLS)):
        extra.append(SymbolSpec(
            symbol=_synthetic_ticker(n),
            # Log-uniform from $10 to $600, like the cross-section of listed large and mid caps.
            price=round(10 * 60 ** rng.random(), 2),
            drift=round(rng.uniform(0.0, 0.15), 3),
            volatility=round(rng.uniform(0.15, 0.55), 3),
            ticks_per_minute=float(rng.randint(8, 24)),
        ))
    return DEFAULT_SYMBOLS + tuple(extra)
