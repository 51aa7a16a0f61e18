"""The feed interface: a source of portfolio events (the simulator, or Alpaca) publishing to a bus.

A feed runs on the server's IOLoop. It must never raise out of its own tasks: failures are
reported through ``health()`` and the server keeps serving.

In a cluster one node runs the feed (``leader.LeaderFeed``) and hands it a ``FeedState``: records
its successor reads to continue where it stopped (the simulator's market and checkpoints). A feed
that re-syncs from its source instead (Alpaca) keeps nothing there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..bus import EventBus
from ..core.health import FeedHealth


class FeedState(ABC):
    """Named records a feed keeps for whichever node runs it next."""

    @abstractmethod
    async def get(self, name: str) -> bytes | None:
        """The record, or None when there is none (or the store can't be reached: start afresh)."""

    @abstractmethod
    async def put(self, name: str, value: bytes) -> None:
        """Store the record (best effort: a failure is logged, the feed goes on)."""


class Feed(ABC):
    source: str = "none"

    def keep_state(self, state: FeedState, interval: float) -> None:
        """Keep what a successor needs in ``state``, about every ``interval`` seconds. The default
        keeps nothing: the feed starts from its source each time."""

    @abstractmethod
    async def start(self, bus: EventBus) -> None:
        """Begin publishing. Returns once started; the feed's work continues in background tasks."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop publishing and release connections. Idempotent."""

    @abstractmethod
    def health(self) -> FeedHealth:
        """Current health, cheap to call (admin stats call it on every request)."""


class NoFeed(Feed):
    """No event source: the server streams only what tests or other publishers put on the bus."""

    source = "none"

    async def start(self, bus: EventBus) -> None:
        return None

    async def stop(self) -> None:
        return None

    def health(self) -> FeedHealth:
        return FeedHealth(source="none", connected=True, market_open=False)


class PublishedOnly(NoFeed):
    """``feed.source: publish``: no feed of our own; every event comes through POST /api/v1/publish
    (which takes events alongside any other source too). Connected: there is nothing to lose."""

    source = "publish"

    def health(self) -> FeedHealth:
        return FeedHealth(source="publish", connected=True, market_open=False)
