"""Shared simulation runs for the simulator tests: each distinct run is computed once per session."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import lru_cache

from portfolio_ws.core.events import Event
from portfolio_ws.settings import SimulatorSettings
from simulator import Simulation
from portfolio_ws import market_calendar as cal

TimedEvent = tuple[float, Event]


def ny(text: str) -> float:
    """Epoch seconds of a New York wall time, ``2025-03-03 09:30``."""
    return datetime.fromisoformat(text).replace(tzinfo=cal.NEW_YORK).timestamp()


@lru_cache(maxsize=8)
def run(start: str, days: int, users: int = 5, seed: int = 1, **knobs: object) -> tuple[
        tuple[Event, ...], tuple[TimedEvent, ...]]:
    """Simulate ``users`` demo users from New York time ``start`` through ``days`` sessions' closes."""
    settings = replace(SimulatorSettings(seed=seed), **knobs)  # type: ignore[arg-type]
    t = ny(start)
    sim = Simulation([f"user-{i}" for i in range(users)], settings, t)
    initial = tuple(sim.initial_events())
    end = t
    for _ in range(days):
        end = cal.next_session(end).close
    events = tuple(sim.advance_to(end + 1))
    return initial, events
