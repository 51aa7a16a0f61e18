"""The event bus interface: event sources publish, the streaming engine subscribes.

``bus_memory.InMemoryBus`` implements it in-process; a Redis bus will implement the same contract
(tests/contract_bus.py runs against every implementation). Nothing on the network can publish.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

from .core.events import Event

Handler = Callable[[Event], None]


class EventBus(ABC):
    """Delivers each published event to every subscribed handler, in publish order."""

    @abstractmethod
    def publish(self, event: Event) -> None:
        """Hand ``event`` to the bus. Never blocks; delivery may be synchronous."""

    @abstractmethod
    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Register ``handler``; returns a function that unsubscribes it."""

    async def close(self) -> None:
        """Release resources. The default has none."""
