"""The recovery buffer: each user's last N events (and at most ``max_age`` seconds old), so a
client that reconnects with ``resumeFrom`` gets exactly what it missed, or is told it can't.

Events are held as ``Stamped`` tuples (see window.py): millions of them, which the garbage
collector does not visit.
"""

from __future__ import annotations

from collections import deque

from .window import AT, SEQ, Stamped


class RecoveryBuffer:
    """One user's held events, oldest first, with contiguous offsets."""

    __slots__ = ("_events", "_max_age")

    def __init__(self, max_events: int, max_age: float) -> None:
        self._events: deque[Stamped] = deque(maxlen=max_events)
        self._max_age = max_age

    def append(self, stamped: Stamped) -> None:
        events = self._events
        if events and stamped[SEQ] != events[-1][SEQ] + 1:
            events.clear()  # a gap (events numbered elsewhere that never reached us): nothing before it can be replayed
        events.append(stamped)
        self._expire(stamped[AT])

    def _expire(self, now: float) -> None:
        horizon = now - self._max_age
        events = self._events
        while events and events[0][AT] < horizon:
            events.popleft()

    def since(self, offset: int, current: int, now: float) -> list[Stamped] | None:
        """Every held event after ``offset``, or None when any of them is gone (or ``offset`` is
        from the future, e.g. the server restarted)."""
        if offset > current:
            return None
        if offset == current:
            return []
        self._expire(now)
        events = self._events
        if not events or events[0][SEQ] > offset + 1:
            return None
        return [s for s in events if s[SEQ] > offset]

    def clear(self) -> None:
        self._events.clear()

    def __len__(self) -> int:
        return len(self._events)
