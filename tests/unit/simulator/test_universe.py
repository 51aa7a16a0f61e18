"""The universe: 30 real large caps, then seeded synthetic tickers."""

from __future__ import annotations

import pytest

from simulator.universe import DEFAULT_SYMBOLS, universe


def test_default_universe() -> None:
    assert len(DEFAULT_SYMBOLS) == 30 and universe(30, 1)[0].symbol == "AAPL"
    assert universe(5, 1) == DEFAULT_SYMBOLS[:5]
    assert all(s.price > 10 and 0 < s.volatility < 1 for s in DEFAULT_SYMBOLS)


def test_synthetic_tickers_beyond_the_list() -> None:
    big = universe(500, 1)
    symbols = [s.symbol for s in big]
    assert len(set(symbols)) == 500 and big[:30] == DEFAULT_SYMBOLS
    assert all(len(s) == 4 and s.startswith("X") for s in symbols[30:])
    assert universe(500, 1) == big and universe(500, 2) != big
    assert all(10 <= s.price <= 600 and 0.15 <= s.volatility <= 0.55 for s in big[30:])
    with pytest.raises(ValueError):
        universe(0, 1)
