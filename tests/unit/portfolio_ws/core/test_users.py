"""Loading a user's state from a shared store (cluster mode, core/users.py): events that arrive
while the load is in flight are held, then those newer than the loaded offset are taken in; the
loaded history answers a resume."""

from __future__ import annotations

from portfolio_ws import constants as c
from portfolio_ws.core.portfolio import PortfolioState
from portfolio_ws.core.users import UserSnapshot
from tests.builders import NOW, later, position, trade
from tests.unit.portfolio_ws.core.driver import make_core


def stored(*trade_ids: str, first_seq: int = 101) -> UserSnapshot:
    state = PortfolioState()
    history = []
    for i, trade_id in enumerate(trade_ids):
        event = trade("u1", trade_id, at=later(i))
        state.apply(event)
        history.append((first_seq + i, NOW + i, event))
    return UserSnapshot(first_seq + len(trade_ids) - 1, state, history)


def test_a_loaded_user_has_the_stores_state_offset_and_history() -> None:
    core = make_core()
    assert not core.is_loaded("u1")
    core.begin_load("u1")
    core.finish_load("u1", stored("t1", "t2", "t3"), NOW)
    assert core.is_loaded("u1")
    seq, data = core.portfolio("u1")
    assert seq == 103 and [t["tradeId"] for t in data[c.TRADES]] == ["t1", "t2", "t3"]
    held = core.users["u1"].recovery.since(101, 103, NOW + 3)
    assert held is not None and [s[0] for s in held] == [102, 103]


def test_events_during_the_load_are_held_then_only_the_newer_ones_taken_in() -> None:
    core = make_core()
    core.begin_load("u1")
    core.receive_event(trade("u1", "t2", at=later(1)), NOW, 102)     # already in the stored state
    core.receive_event(trade("u1", "t4", at=later(3)), NOW, 104)     # newer: taken in after the load
    assert core.portfolio("u1")[1][c.TRADES] == []                   # nothing applied meanwhile
    core.finish_load("u1", stored("t1", "t2", "t3"), NOW)
    seq, data = core.portfolio("u1")
    assert seq == 104 and [t["tradeId"] for t in data[c.TRADES]] == ["t1", "t2", "t3", "t4"]
    assert core.stats.stale_events == 0


def test_a_failed_load_takes_in_the_held_events_and_leaves_the_user_to_load_again() -> None:
    core = make_core()
    core.begin_load("u1")
    core.receive_event(position("u1"), NOW, 7)
    core.finish_load("u1", None, NOW)
    assert not core.is_loaded("u1") and core.portfolio("u1")[0] == 7


def test_a_stored_state_older_than_what_the_node_has_is_not_taken() -> None:
    core = make_core()
    core.receive_event(trade("u1", "t9"), NOW, 500)
    core.begin_load("u1")
    core.finish_load("u1", stored("t1"), NOW)
    seq, data = core.portfolio("u1")
    assert seq == 500 and [t["tradeId"] for t in data[c.TRADES]] == ["t9"]


def test_a_publish_repeated_under_a_new_offset_is_not_delivered_again() -> None:
    # Redis restarted empty while a publish was in flight: the retry numbers the same events anew.
    core = make_core()
    core.receive_event(trade("u1", "t1", at=later(1)), NOW, 10)
    core.receive_event(trade("u1", "t1", at=later(1)), NOW, 1_000_000)
    seq, data = core.portfolio("u1")
    assert seq == 10 and [t["tradeId"] for t in data[c.TRADES]] == ["t1"]
    assert core.stats.stale_events == 1
