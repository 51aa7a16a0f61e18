"""The feed interface: a source of portfolio events (the simulator, or Alpaca) publishing to a bus.

A feed runs on the server's IOLoop. It must never raise out of its own tasks: failures are
reported through ``health()`` and the server keeps serving.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..bus import EventBus
from ..core.health import FeedHealth


class Feed(ABC):
    source: str = "none"

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
