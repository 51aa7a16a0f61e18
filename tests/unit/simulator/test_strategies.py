"""Strategy decisions: valid intents, prices on the right side, opening orders, fat fingers."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

from simulator.accounting import Book, Position
from simulator.strategies import FAT_FINGER_FACTOR, PROFILES, decide

PRICES = [Decimal("100.00"), Decimal("50.00"), Decimal("250.00")]
OPEN = [Decimal("99.00"), Decimal("51.00"), Decimal("250.00")]


def book() -> Book:
    b = Book(Decimal("50000.00"), Decimal(2))
    b.last_close_equity = Decimal("100000.00")
    b.positions[0] = Position(0, "A", Decimal(100), Decimal("9000.00"), None, None)
    b.positions[1] = Position(1, "B", Decimal(-200), Decimal("-10000.00"), None, None)
    return b


def test_intents_are_valid_orders() -> None:
    kinds: Counter[str] = Counter()
    for profile in PROFILES:
        rng = random.Random(profile.name)
        for _ in range(2000):
            intent = decide(profile, book(), PRICES, OPEN, rng)
            assert intent is not None and intent.side in ("buy", "sell") and intent.qty >= 1
            assert intent.qty == intent.qty.to_integral_value()
            kinds[intent.type] += 1
            price = PRICES[intent.sym]
            if intent.type == "stop":
                assert intent.stop_price is not None and intent.limit_price is None
                assert intent.stop_price > price if intent.side == "buy" else intent.stop_price < price
            elif intent.type == "limit":
                assert intent.limit_price is not None and intent.stop_price is None
                assert intent.limit_price == intent.limit_price.quantize(Decimal("0.01"))
            else:
                assert intent.limit_price is None and intent.stop_price is None and intent.cancel_after is None
    assert set(kinds) == {"market", "limit", "stop"}


def test_reducing_decisions_trade_against_the_position() -> None:
    profile = PROFILES[2]
    rng = random.Random(3)
    for _ in range(500):
        b = book()
        intent = decide(profile, b, PRICES, OPEN, rng)
        assert intent is not None
        held = b.positions.get(intent.sym)
        if held is not None and (intent.side == "sell") == (held.qty > 0):
            assert intent.qty <= abs(held.qty)  # trims or closes, never flips


def test_opening_decisions_are_modest_market_orders() -> None:
    for profile in PROFILES:
        rng = random.Random(9)
        for _ in range(300):
            b = book()
            intent = decide(profile, b, PRICES, OPEN, rng, opening=True)
            assert intent is not None and intent.type == "market"
            held = b.positions.get(intent.sym)
            reduces = held is not None and (intent.side == "sell") == (held.qty > 0) and intent.qty <= abs(held.qty)
            modest = intent.qty * PRICES[intent.sym] <= b.last_close_equity * Decimal(repr(profile.size[0]))
            assert reduces or modest


def test_some_intents_are_fat_fingered_and_cash_accounts_do_not_short() -> None:
    rng = random.Random(5)
    flat = Book(Decimal("100000.00"), Decimal(1))
    flat.last_close_equity = Decimal("100000.00")
    sizes = []
    for _ in range(3000):
        intent = decide(PROFILES[0], flat, PRICES, OPEN, rng, shorts_allowed=False)
        assert intent is not None and intent.side == "buy"
        sizes.append(intent.qty * PRICES[intent.sym])
    huge = [s for s in sizes if s > Decimal("100000")]
    assert 0 < len(huge) < len(sizes) * 0.05 and FAT_FINGER_FACTOR >= 20
