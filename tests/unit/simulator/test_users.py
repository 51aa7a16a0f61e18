"""Starting portfolios: exact equity, longs and shorts, cash accounts without shorts."""

from __future__ import annotations

import random
from collections import Counter

from portfolio_ws.settings import SimulatorSettings
from simulator.prices import PriceModel
from simulator.universe import universe
from simulator.users import make_user


def prices() -> PriceModel:
    return PriceModel(universe(30, 1), random.Random(1))


def test_starting_equity_is_exact_and_portfolios_mix_longs_and_shorts() -> None:
    settings = SimulatorSettings()
    model = prices()
    sides: Counter[str] = Counter()
    for i in range(50):
        user = make_user(f"u{i}", i, settings, model, 1.7e9)
        equity, gross = user.book.valuation(model.decimals)
        assert equity == user.book.last_close_equity and equity == equity.to_integral_value()
        assert 25_000 <= equity <= 400_000
        assert 3 <= len(user.book.positions) <= 10
        assert gross <= equity * 2  # never starts beyond Reg-T initial margin
        sides.update(p.side for p in user.book.positions.values())
        assert all(p.opened_at is not None and p.opened_at.timestamp() < 1.7e9 for p in user.book.positions.values())
    assert sides["short"] and sides["long"] > sides["short"]


def test_cash_accounts_hold_no_shorts_and_stay_within_equity() -> None:
    settings = SimulatorSettings(margin=1.0)
    model = prices()
    for i in range(30):
        user = make_user(f"u{i}", i, settings, model, 1.7e9)
        assert all(p.qty > 0 for p in user.book.positions.values())
        assert user.book.cash >= 0


def test_a_user_is_a_function_of_seed_and_id() -> None:
    model = prices()
    a = make_user("alice", 0, SimulatorSettings(seed=1), model, 1.7e9)
    b = make_user("alice", 7, SimulatorSettings(seed=1), model, 1.7e9)
    c = make_user("alice", 0, SimulatorSettings(seed=2), model, 1.7e9)
    assert a.book.cash == b.book.cash and a.profile == b.profile
    assert (a.book.cash, list(a.book.positions)) != (c.book.cash, list(c.book.positions))
