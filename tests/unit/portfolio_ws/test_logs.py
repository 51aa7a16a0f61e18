"""portfolio_ws/logs.py: repeated warnings and errors thinned to a trickle, with a count of what was dropped."""

from __future__ import annotations

import logging

from portfolio_ws.logs import RepeatFilter
from tests.harness import FakeClock


def record(msg: str, *args: object, level: int = logging.WARNING, name: str = "tornado.access") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_flood_of_one_kind_passes_a_burst_then_one_a_second_with_the_count_dropped():
    clock = FakeClock(0.0)
    thin = RepeatFilter(burst=5, every=1.0, clock=clock)
    passed = [thin.filter(record("%d %s %.2fms", 404, f"/x{i}", 1.0)) for i in range(1000)]
    assert sum(passed) == 5
    clock.now = 1.0
    last = record("%d %s %.2fms", 400, "/y", 1.0)
    assert thin.filter(last)
    assert last.getMessage() == "400 /y 1.00ms (995 similar dropped)"
    for second in range(2, 62):  # a minute of the flood: one line a second
        clock.now = float(second)
        assert sum(thin.filter(record("%d %s %.2fms", 404, "/z", 1.0)) for _ in range(100)) == 1


def test_other_kinds_and_info_lines_are_not_held_back():
    clock = FakeClock(0.0)
    thin = RepeatFilter(burst=1, every=1.0, clock=clock)
    assert thin.filter(record("a %s", 1)) and not thin.filter(record("a %s", 2))
    assert thin.filter(record("b %s", 1)) and thin.filter(record("a %s", 1, name="other"))
    assert thin.filter(record("a %s", 1, level=logging.ERROR))
    assert all(thin.filter(record("connected %s", i, level=logging.INFO)) for i in range(100))
    clock.now = 5.0
    plain = record("100% literal")
    assert thin.filter(plain) and thin.filter(record("100% literal")) is False
    clock.now = 10.0
    again = record("100% literal")
    assert thin.filter(again) and again.getMessage() == "100% literal (1 similar dropped)"
