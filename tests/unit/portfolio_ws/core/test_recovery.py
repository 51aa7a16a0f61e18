"""The recovery buffer: exactly what a reconnecting client missed, or None when it can't be had."""

from __future__ import annotations

from portfolio_ws.core.recovery import RecoveryBuffer
from portfolio_ws.core.window import SEQ, Stamped, stamp
from tests.builders import position


def filled(count: int, max_events: int = 1000, max_age: float = 300.0, start: float = 0.0,
           step: float = 1.0) -> RecoveryBuffer:
    buffer = RecoveryBuffer(max_events, max_age)
    for seq in range(1, count + 1):
        buffer.append(stamp(seq, start + (seq - 1) * step, position()))
    return buffer


def seqs(held: list[Stamped] | None) -> list[int] | None:
    return None if held is None else [s[SEQ] for s in held]


def test_exact_replay_after_an_offset() -> None:
    buffer = filled(10)
    assert seqs(buffer.since(7, 10, now=10.0)) == [8, 9, 10]


def test_replay_from_zero_when_everything_is_held() -> None:
    assert seqs(filled(3).since(0, 3, now=3.0)) == [1, 2, 3]


def test_nothing_missed() -> None:
    assert filled(5).since(5, 5, now=5.0) == []


def test_offset_from_the_future_is_not_recoverable() -> None:
    # The server restarted: the client's offset is beyond anything this server handed out.
    assert filled(5).since(6, 5, now=5.0) is None
    assert RecoveryBuffer(1000, 300.0).since(812, 0, now=0.0) is None


def test_gone_by_count() -> None:
    buffer = filled(20, max_events=10)  # holds 11..20
    assert len(buffer) == 10
    assert seqs(buffer.since(10, 20, now=20.0)) == list(range(11, 21))
    assert buffer.since(9, 20, now=20.0) is None   # event 10 is gone
    assert buffer.since(0, 20, now=20.0) is None


def test_gone_by_age() -> None:
    buffer = filled(3, start=0.0, step=1.0)  # received at 0, 1, 2
    assert seqs(buffer.since(0, 3, now=300.0)) == [1, 2, 3]   # exactly 5 minutes old: still held
    assert buffer.since(0, 3, now=300.5) is None               # event 1 is over 5 minutes old
    assert seqs(buffer.since(1, 3, now=300.5)) == [2, 3]
    assert buffer.since(2, 3, now=10_000.0) is None            # all expired


def test_old_events_expire_as_new_ones_arrive() -> None:
    buffer = filled(3, start=0.0)
    buffer.append(stamp(4, 1000.0, position()))
    assert len(buffer) == 1


def test_a_gap_in_offsets_drops_what_came_before_it() -> None:
    # Offsets given elsewhere (a cluster): one that skips ahead means events we never saw.
    buffer = filled(3)
    buffer.append(stamp(6, 3.0, position()))
    assert len(buffer) == 1
    assert seqs(buffer.since(5, 6, now=3.0)) == [6]
    assert buffer.since(3, 6, now=3.0) is None
