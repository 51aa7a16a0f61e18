"""The chaos suite's checker catches each thing it is there to catch (chaos.check), on streams built
by hand: a checker that passes everything would make the chaos suite prove nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.process.reliability.chaos import Report, Stream, check


def trade(seq: int, trade_id: str) -> dict[str, Any]:
    return {"type": "trade_executed", "seq": seq, "data": {"tradeId": trade_id}}


def order(seq: int, order_id: str, status: str) -> dict[str, Any]:
    return {"type": "order_update", "seq": seq, "data": {"orderId": order_id, "status": status}}


def snapshot(seq: int, *trade_ids: str) -> dict[str, Any]:
    return {"type": "snapshot", "seq": seq, "data": {"trades": [{"tradeId": t} for t in trade_ids], "orders": []}}


def stream(*messages: dict[str, Any], closes: list[tuple[float, int, str]] | None = None) -> Stream:
    made = Stream("ann#0", "cookie", ["ws://x"])
    made.messages = [(float(i), m) for i, m in enumerate(messages)]
    made.closes = closes or []
    return made


GOOD = [snapshot(1), trade(2, "t1"), order(3, "o1", "accepted"), order(4, "o1", "filled"), trade(5, "t2")]


def run(s: Stream, recorded: dict[int, str] | None = None, max_gap: float = 10.0) -> Report:
    report = Report()
    check(s, recorded, max_gap, (0.0, float(len(s.messages))), report)
    return report


def test_a_sound_stream_passes_and_a_gap_snapshot_is_flagged() -> None:
    report = run(stream(*GOOD, snapshot(9, "t1", "t2", "t3"), trade(10, "t4")),
                 recorded={2: "t1", 5: "t2", 7: "t3", 10: "t4"})
    assert report.gap_covers == 1 and report.trades == 3


@pytest.mark.parametrize("bad, problem", [
    (stream(*GOOD, trade(6, "t1")), "trade ids twice"),
    (stream(*GOOD, order(3, "o2", "new")), "seq went down"),
    (stream(*GOOD, order(6, "o1", "accepted")), "went back"),
    (stream(*GOOD, closes=[(5.0, 1008, "Session expired")]), "closed 1008"),
])
def test_each_fault_is_caught(bad: Stream, problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        run(bad)


def test_a_recorded_trade_never_delivered_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"never delivered: \['t9'\]"):
        run(stream(*GOOD), recorded={2: "t1", 3: "t9", 5: "t2"})


def test_events_stopping_too_long_are_caught() -> None:
    with pytest.raises(AssertionError, match="events stopped"):
        run(stream(*GOOD), max_gap=0.5)
