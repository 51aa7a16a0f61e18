"""The coalescing batch window of one user, and the rendering of a window into one message.

Rules (PROTOCOL.md, Batching): positions coalesce to the latest per symbol, orders to the latest per
order id, account to the latest; trades are all kept, in order. A connection receives only its
channels; one item is sent as its own type, more as a ``batch`` with only the non-empty keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Iterable

import ujson

from .. import constants as c
from . import wire
from .events import Event


# An event as the server took it in: (offset, when it arrived, channel, coalescing key, message
# type, wire ``data`` as JSON). The JSON is formatted once, however many connections receive it,
# and the event object is let go. A plain tuple, not an object: a server holds millions of these
# (windows, recovery buffers), and a tuple of strings and numbers is one the garbage collector stops
# visiting after its first look, where objects are visited at every full collection, each one
# stopping the IOLoop (benchmarks/gc_pause.py; docs/performance.md, change 2, has the figures).
Stamped = tuple[int, float, str, str, str, str]
SEQ: Final = 0
AT: Final = 1
CHANNEL: Final = 2
KEY: Final = 3
TYPE: Final = 4
FRAGMENT: Final = 5


def stamp(seq: int, received_at: float, event: Event) -> Stamped:
    channel = event.CHANNEL
    key = str(seq) if channel == c.TRADES else event.key  # trades are never coalesced
    return (seq, received_at, channel, key, event.TYPE, wire.fragment(wire.payload(event)))


def payload(stamped: Stamped) -> dict[str, Any]:
    """The wire ``data`` as a dict (tests and tools; the server sends the fragment)."""
    return ujson.loads(stamped[FRAGMENT])  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Rendered:
    type: str
    # The message's ``data`` as JSON, assembled from the events' fragments.
    data_json: str
    seq: int
    # Events that would have been one message each without batching (efficiency accounting).
    raw_events: int
    # When the oldest and the newest event in the message arrived (latency accounting). An order
    # or trade flushes its user's window at once, so in a message that carries one it is the newest.
    oldest_received_at: float
    newest_received_at: float

    @property
    def data(self) -> dict[str, Any]:
        return ujson.loads(self.data_json)  # type: ignore[no-any-return]


class Window:
    """Pending events of one user since the last flush."""

    __slots__ = ("items", "counts")

    def __init__(self) -> None:
        # channel -> coalescing key -> latest stamped event (trades: one key per event)
        self.items: dict[str, dict[str, Stamped]] = {ch: {} for ch in c.CHANNELS}
        self.counts: dict[str, int] = dict.fromkeys(c.CHANNELS, 0)

    def add(self, stamped: Stamped) -> None:
        channel = stamped[CHANNEL]
        bucket = self.items[channel]
        key = stamped[KEY]
        bucket.pop(key, None)  # re-insert so the order is that of the latest update
        bucket[key] = stamped
        self.counts[channel] += 1

    def clear(self) -> None:
        """Empty, for the next window (reused: one window object per user, not one per flush)."""
        for bucket in self.items.values():
            bucket.clear()
        counts = self.counts
        for channel in counts:
            counts[channel] = 0

    def extend(self, events: Iterable[Stamped]) -> "Window":
        for stamped in events:
            self.add(stamped)
        return self

    def __bool__(self) -> bool:
        return any(self.counts.values())

    def has_any(self, channels: Iterable[str]) -> bool:
        counts = self.counts
        for channel in channels:  # a loop, not any(genexpr): called per user and set every tick
            if counts[channel]:
                return True
        return False

    def render(self, channels: frozenset[str], newer_than: int = 0) -> Rendered | None:
        """The one message a connection subscribed to ``channels`` receives, or None.

        Events at or below ``newer_than`` are left out (the connection already has them)."""
        picked: list[tuple[str, list[Stamped]]] = []
        total = raw = 0
        for channel in c.CHANNELS:
            if channel not in channels or not self.counts[channel]:
                continue
            items = [s for s in self.items[channel].values() if s[SEQ] > newer_than]
            if items:
                picked.append((channel, items))
                total += len(items)
                raw += self.counts[channel]
        if not total:
            return None
        everything = [s for _, items in picked for s in items]
        seq = 0
        oldest = newest = everything[0][AT]
        for s in everything:  # one pass, not three generator expressions: this runs per user and set every tick
            if s[SEQ] > seq:
                seq = s[SEQ]
            at = s[AT]
            if at < oldest:
                oldest = at
            elif at > newest:
                newest = at
        if total == 1:
            only = everything[0]
            return Rendered(only[TYPE], only[FRAGMENT], seq, raw, oldest, newest)
        parts = []
        for name, items in picked:
            if name == c.ACCOUNT:
                parts.append(f'"{name}":{items[-1][FRAGMENT]}')
            else:
                parts.append(f'"{name}":[' + ",".join(s[FRAGMENT] for s in items) + "]")
        return Rendered(c.BATCH, "{" + ",".join(parts) + "}", seq, raw, oldest, newest)
