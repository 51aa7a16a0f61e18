"""Bus helpers for tests: what a bus delivered, and waiting on a Redis bus's flags and counters."""

from __future__ import annotations

import asyncio
from typing import Callable

from portfolio_ws.bus import EventBus
from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.core.events import Event

TIMEOUT = 15.0


class Received:
    """What one subscriber got, awaitable by count (no sleeps)."""

    def __init__(self, bus: EventBus) -> None:
        self.items: list[tuple[Event, int | None]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.unsubscribe = bus.subscribe_numbered(self.on_event)

    def on_event(self, event: Event, seq: int | None) -> None:
        self.items.append((event, seq))
        for count, future in self._waiters:
            if len(self.items) >= count and not future.done():
                future.set_result(None)

    async def until(self, count: int) -> list[tuple[Event, int | None]]:
        if len(self.items) < count:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((count, future))
            await asyncio.wait_for(future, TIMEOUT)
        return self.items

    @property
    def events(self) -> list[Event]:
        return [event for event, _ in self.items]


async def bus_until(bus: RedisBus, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Until ``condition`` holds, re-checked at each change of the bus's connection flags and
    counters (``RedisBus.when``): a reconnect or a publish's reply has no future of its own."""
    await asyncio.wait_for(bus.when(condition), timeout)
