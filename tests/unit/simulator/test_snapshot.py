"""Checkpoints are JSON, never pickles (simulator/snapshot.py, checkpoint.py): a simulation read
back from one continues exactly as the one that wrote it, and a record that is not a checkpoint of
this version - a pickle, garbage, another version - is refused with a ValueError, never run."""

from __future__ import annotations

import pickle
from collections import deque
from dataclasses import replace
from typing import Any

import pytest
import ujson

from portfolio_ws.core.codec import to_dict
from portfolio_ws.settings import SimulatorSettings
from simulator import Simulation, snapshot
from portfolio_ws import market_calendar as cal
from simulator.accounting import Book, Position
from simulator.checkpoint import FORMAT, VERSION, Checkpoint
from simulator.orders import Order
from simulator.users import User

from .runs import ny

SETTINGS = replace(SimulatorSettings(seed=7), orders_per_day=60.0, symbols=8, tick_rate=0.3)  # quick, many orders
USERS = [f"user-{i}" for i in range(6)]


def checkpoint_at(t: float, users: list[str] = USERS) -> tuple[Simulation, Checkpoint]:
    sim = Simulation(users, SETTINGS, ny("2025-03-03 09:45"))
    sim.initial_events()
    sim.advance_to(t)
    return sim, Checkpoint("m1", 123, {"user-0": 120}, sim, deque(), 0.0)


@pytest.mark.parametrize("at", ["2025-03-03 11:00", "2025-03-03 16:30", "2025-03-04 09:31"])
@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
def test_a_simulation_read_back_from_a_checkpoint_continues_identically(at: str) -> None:
    """Mid-session, after the close (orders expired, next open scheduled) and just after an open."""
    original, checkpoint = checkpoint_at(ny(at))
    raw = checkpoint.encode()
    copy = Checkpoint.decode(raw)
    assert copy.published == 123 and copy.last == {"user-0": 120} and copy.market_id == "m1"
    assert copy.sim.now == original.now
    assert [to_dict(e) for e in copy.sim.initial_events()] == [to_dict(e) for e in original.initial_events()]
    end = max(ny(at), cal.next_session(ny(at)).open) + 3600  # an hour of trading on
    theirs = [(t, to_dict(e)) for t, e in original.advance_to(end)]
    ours = [(t, to_dict(e)) for t, e in copy.sim.advance_to(end)]
    assert len(ours) > 500 and any(e["event"] == "trade_executed" for _, e in ours)
    assert ours == theirs
    # Orders and users can still be driven through the public API after the round trip.
    assert copy.sim.submit_order("user-1", "AAPL", "buy", "market", 1) == original.submit_order(
        "user-1", "AAPL", "buy", "market", 1)
    assert Checkpoint(copy.market_id, 0, {}, copy.sim).encode() == Checkpoint("m1", 0, {}, original).encode()


def test_a_checkpoint_holds_pregenerated_events_and_decimals_as_text() -> None:
    sim, checkpoint = checkpoint_at(ny("2025-03-03 10:00"))
    ahead = sim.advance_to(ny("2025-03-03 10:05"))
    checkpoint.ahead, checkpoint.ahead_to = deque(ahead), ny("2025-03-03 10:00")
    raw = checkpoint.encode()
    record = ujson.loads(raw)
    assert record["format"] == FORMAT and record["version"] == VERSION
    cash = record["sim"]["users"][0]["cash"]
    assert isinstance(cash, str) and str(sim.users[0].book.cash) == cash
    copy = Checkpoint.decode(raw)
    assert [(t, to_dict(e)) for t, e in copy.ahead] == [(t, to_dict(e)) for t, e in ahead]
    assert copy.ahead_to == checkpoint.ahead_to


class Evil:
    def __reduce__(self) -> Any:
        return (print, ("ran",))


def test_a_pickle_garbage_or_another_version_is_refused() -> None:
    _, checkpoint = checkpoint_at(ny("2025-03-03 10:00"))
    good = ujson.loads(checkpoint.encode())
    hostile = [
        pickle.dumps(Evil()), pickle.dumps(checkpoint.sim.settings), b"garbage", b"", b"\xff\xfe",
        b"[1, 2]", b'"a string"', ujson.dumps({**good, "version": VERSION + 1}).encode(),
        ujson.dumps({**good, "version": None}).encode(), ujson.dumps({**good, "format": "other"}).encode(),
        ujson.dumps({k: v for k, v in good.items() if k != "sim"}).encode(),
        ujson.dumps({**good, "sim": {**good["sim"], "users": "nobody"}}).encode(),
        ujson.dumps({**good, "sim": {**good["sim"], "settings": {"seed": "1; rm -rf /"}}}).encode(),
        ujson.dumps({**good, "sim": {**good["sim"], "agenda": [[1.0, 1, 99, None]]}}).encode(),
        ujson.dumps({**good, "sim": {**good["sim"], "dayOpen": ["NaN"] * len(good["sim"]["dayOpen"])}}).encode(),
        ujson.dumps({**good, "published": True}).encode(),
        b"[" * 100_000,
    ]
    for raw in hostile:
        with pytest.raises(ValueError, match="not a checkpoint"):
            Checkpoint.decode(raw)


def test_the_snapshot_names_every_attribute_of_what_it_saves() -> None:
    """A new attribute on the engine's classes must be added to the checkpoint (snapshot.py), or
    a resumed market would silently lose it: this fails until it is."""
    sim, _ = checkpoint_at(ny("2025-03-03 10:00"))
    assert set(vars(sim)) == set(snapshot.SIMULATION_FIELDS)
    assert set(vars(sim.prices)) == set(snapshot.PRICE_FIELDS)
    assert set(Order.__slots__) == set(snapshot.ORDER_FIELDS)
    saved_user = {"user_id", "idx", "rng", "book", "profile", "strategy_id", "open_orders",
                  *snapshot._USER_NUMBERS, *snapshot._USER_FLOATS}
    assert set(User.__slots__) == saved_user
    assert set(Book.__slots__) == {"cash", "positions", "last_close_equity", "margin"}
    assert len(snapshot._position(next(iter(sim.users[0].book.positions.values())))) == len(Position.__slots__)
