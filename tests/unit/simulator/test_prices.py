"""The price model and the universe: GBM on the cent tick, the U-shaped print intensity."""

from __future__ import annotations

import math
import random
import statistics
from decimal import Decimal

from simulator.prices import PEAK_INTENSITY, TROUGH_INTENSITY, TRADING_SECONDS_PER_YEAR, PriceModel, intensity
from simulator.universe import DEFAULT_SYMBOLS, SymbolSpec

CENT = Decimal("0.01")


def test_intensity_is_u_shaped_with_mean_one() -> None:
    assert intensity(0.0) == intensity(1.0) == PEAK_INTENSITY
    assert intensity(0.5) == TROUGH_INTENSITY
    assert intensity(0.1) > intensity(0.3) > intensity(0.5) < intensity(0.7) < intensity(0.9)
    n = 10_000
    assert abs(sum(intensity((i + 0.5) / n) for i in range(n)) / n - 1.0) < 1e-6
    # Peak prints of the busiest default symbol stay under 100 a minute, the quietest over 1.
    rates = [s.ticks_per_minute for s in DEFAULT_SYMBOLS]
    assert max(rates) * PEAK_INTENSITY * 1.5 < 100 and min(rates) * TROUGH_INTENSITY / 1.5 > 1


def test_prices_are_on_the_cent_and_never_below_a_cent() -> None:
    wild = SymbolSpec("WILD", 0.05, -2.0, 3.0, 20)
    model = PriceModel([wild], random.Random(7))
    for _ in range(5000):
        price = model.step(0, 3600)
        assert price == model.price(0) == price.quantize(CENT) and price >= CENT


def test_gbm_moments_match_drift_and_volatility() -> None:
    spec = SymbolSpec("TEST", 100.0, 0.10, 0.30, 20)
    day = 6.5 * 3600
    returns = []
    for seed in range(3000):
        model = PriceModel([spec], random.Random(seed))
        model._level[0] = 100.0
        for _ in range(4):
            model.step(0, day / 4)
        returns.append(math.log(model._level[0] / 100.0))
    years = day / TRADING_SECONDS_PER_YEAR
    assert abs(statistics.stdev(returns) / (0.30 * math.sqrt(years)) - 1) < 0.06
    assert abs(statistics.fmean(returns) - (0.10 - 0.045) * years) < 0.002


def test_print_gaps_are_bounded() -> None:
    model = PriceModel(DEFAULT_SYMBOLS[:1], random.Random(1))
    mean = 60.0 / DEFAULT_SYMBOLS[0].ticks_per_minute
    for x in (0.0, 0.25, 0.5, 1.0):
        gaps = [model.next_gap(0, x) for _ in range(1000)]
        assert 0.5 * mean / intensity(x) <= min(gaps) and max(gaps) <= 1.5 * mean / intensity(x)

