"""The auditor catches what it claims to: each tampered event is an AuditError."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Callable

import pytest

from portfolio_ws.core.events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted
from portfolio_ws.settings import SimulatorSettings
from simulator import Simulation
from simulator.audit import AuditError, Auditor

from .runs import TimedEvent, ny

CENT = Decimal("0.01")


@lru_cache(maxsize=1)
def stream() -> tuple[tuple[Event, ...], tuple[TimedEvent, ...]]:
    sim = Simulation(["a", "b"], SimulatorSettings(seed=4, orders_per_day=300.0, tick_rate=0.3),
                     ny("2025-03-03 15:00"))
    initial = tuple(sim.initial_events())
    return initial, tuple(sim.advance_to(ny("2025-03-04 10:30")))


def replay(tamper: Callable[[Event], Event | None], which: Callable[[Event], bool]) -> None:
    """Replay the stream, tampering with the first event ``which`` picks (None drops it)."""
    initial, events = stream()
    auditor = Auditor()
    auditor.snapshot(initial)
    done = False
    for _, event in events:
        if not done and which(event):
            done = True
            changed = tamper(event)
            if changed is None:
                continue
            event = changed
        auditor.check(event)
    assert done


def test_the_untouched_stream_passes() -> None:
    initial, events = stream()
    auditor = Auditor()
    auditor.snapshot(initial)
    for _, event in events:
        auditor.check(event)
    assert set(auditor.statuses) >= {"pending_new", "new", "accepted", "filled"}


def is_fill(e: Event) -> bool:
    return isinstance(e, OrderUpdate) and e.status in ("filled", "partially_filled")


@pytest.mark.parametrize("tamper, which", [
    (lambda e: replace(e, unrealized_pnl=e.unrealized_pnl + CENT), lambda e: isinstance(e, PositionUpdate)),
    (lambda e: replace(e, market_value=e.market_value + CENT), lambda e: isinstance(e, PositionUpdate)),
    (lambda e: replace(e, quantity=e.quantity + 1), lambda e: isinstance(e, PositionUpdate)),
    (lambda e: replace(e, current_price=e.current_price + Decimal("0.001")), lambda e: isinstance(e, PositionUpdate)),
    (lambda e: replace(e, cash=e.cash + CENT), lambda e: isinstance(e, AccountUpdate)),
    (lambda e: replace(e, equity=e.equity + CENT, portfolio_value=e.portfolio_value + CENT),
     lambda e: isinstance(e, AccountUpdate)),
    (lambda e: replace(e, buying_power=e.buying_power + CENT), lambda e: isinstance(e, AccountUpdate)),
    (lambda e: replace(e, day_pnl=e.day_pnl + CENT), lambda e: isinstance(e, AccountUpdate)),
    (lambda e: replace(e, pnl=(e.pnl or Decimal(0)) + CENT), lambda e: isinstance(e, TradeExecuted)),
    (lambda e: replace(e, price=e.price + CENT), lambda e: isinstance(e, TradeExecuted)),
    (lambda e: replace(e, executed_at=e.executed_at.replace(hour=23)), lambda e: isinstance(e, TradeExecuted)),
    (lambda e: None, lambda e: isinstance(e, TradeExecuted)),  # a trade goes missing
    (lambda e: replace(e, status="new"), lambda e: isinstance(e, OrderUpdate) and e.status == "accepted"),
    (lambda e: replace(e, status="filled"), lambda e: isinstance(e, OrderUpdate) and e.status == "new"),
    (lambda e: replace(e, filled_avg_price=(e.filled_avg_price or 0) + CENT), is_fill),
])
def test_tampering_is_caught(tamper: Callable[[Event], Event | None], which: Callable[[Event], bool]) -> None:
    with pytest.raises(AuditError):
        replay(tamper, which)


def test_a_missing_position_update_after_a_fill_is_caught() -> None:
    initial, events = stream()
    auditor = Auditor()
    auditor.snapshot(initial)
    skip_next_position = False
    with pytest.raises(AuditError, match="followed by its position update"):
        for _, event in events:
            if isinstance(event, TradeExecuted):
                skip_next_position = True
            elif skip_next_position and isinstance(event, PositionUpdate):
                continue
            auditor.check(event)


def test_events_before_a_starting_state_are_refused() -> None:
    _, events = stream()
    with pytest.raises(AuditError):
        Auditor().check(events[0][1])


def test_a_fill_dated_on_a_weekend_is_caught() -> None:
    def weekend(e: Event) -> Event:
        assert isinstance(e, TradeExecuted)
        return replace(e, executed_at=e.executed_at + timedelta(days=5))  # a Saturday or Sunday
    with pytest.raises(AuditError, match="outside the regular session"):
        replay(weekend, lambda e: isinstance(e, TradeExecuted))
