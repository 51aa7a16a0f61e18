"""The coalescing batch window of one user, and the rendering of a window into one message.

Rules (PROTOCOL.md, Batching): positions coalesce to the latest per symbol, orders to the latest per
order id, account to the latest; trades are all kept, in order. A connection receives only its
channels; one item is sent as its own type, more as a ``batch`` with only the non-empty keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .. import constants as c
from . import wire
from .events import Event


class Stamped:
    """An event as the server took it in: the user's offset and the time it arrived."""

    __slots__ = ("seq", "received_at", "event", "_payload")

    def __init__(self, seq: int, received_at: float, event: Event) -> None:
        self.seq = seq
        self.received_at = received_at
        self.event = event
        self._payload: dict[str, Any] | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The wire ``data`` of the event, formatted once however many connections receive it."""
        if self._payload is None:
            self._payload = wire.payload(self.event)
        return self._payload


@dataclass(frozen=True, slots=True)
class Rendered:
    type: str
    data: dict[str, Any]
    seq: int
    # Events that would have been one message each without batching (efficiency accounting).
    raw_events: int
    # When the oldest event in the message arrived (latency accounting).
    oldest_received_at: float


class Window:
    """Pending events of one user since the last flush."""

    __slots__ = ("items", "counts")

    def __init__(self) -> None:
        # channel -> coalescing key -> latest stamped event (trades: one key per event)
        self.items: dict[str, dict[str, Stamped]] = {ch: {} for ch in c.CHANNELS}
        self.counts: dict[str, int] = dict.fromkeys(c.CHANNELS, 0)

    def add(self, stamped: Stamped) -> None:
        event = stamped.event
        channel = event.CHANNEL
        bucket = self.items[channel]
        if channel == c.TRADES:
            bucket[str(stamped.seq)] = stamped
        else:
            key = event.key
            bucket.pop(key, None)  # re-insert so the order is that of the latest update
            bucket[key] = stamped
        self.counts[channel] += 1

    def extend(self, events: Iterable[Stamped]) -> "Window":
        for stamped in events:
            self.add(stamped)
        return self

    def __bool__(self) -> bool:
        return any(self.counts.values())

    def has_any(self, channels: Iterable[str]) -> bool:
        return any(self.counts[ch] for ch in channels)

    def render(self, channels: frozenset[str], newer_than: int = 0) -> Rendered | None:
        """The one message a connection subscribed to ``channels`` receives, or None.

        Events at or below ``newer_than`` are left out (the connection already has them)."""
        picked: list[tuple[str, list[Stamped]]] = []
        total = raw = 0
        for channel in c.CHANNELS:
            if channel not in channels or not self.counts[channel]:
                continue
            items = [s for s in self.items[channel].values() if s.seq > newer_than]
            if items:
                picked.append((channel, items))
                total += len(items)
                raw += self.counts[channel]
        if not total:
            return None
        everything = [s for _, items in picked for s in items]
        seq = max(s.seq for s in everything)
        oldest = min(s.received_at for s in everything)
        if total == 1:
            only = everything[0]
            return Rendered(only.event.TYPE, only.payload, seq, raw, oldest)
        data: dict[str, Any] = {}
        for name, items in picked:
            if name == c.ACCOUNT:
                data[name] = items[-1].payload
            else:
                data[name] = [s.payload for s in items]
        return Rendered(c.BATCH, data, seq, raw, oldest)
