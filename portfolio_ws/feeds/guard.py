"""Keeps a misbehaving feed from taking the server down, and makes it visible in admin stats.

A feed runs inside the server process. Whatever it does - raise in ``start()``, let a background
task die, publish objects that are not events or events whose fields were forced past validation,
raise in ``health()`` - the server keeps serving, counts it (``feed.errors``) and, when the feed
can no longer be trusted to deliver (start or a background task failed), reports it not connected
(status ``offline``) with the reason in ``feed.details.failure``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from ..bus import EventBus, Handler, NumberedHandler
from ..constants import OrderSide, OrderStatus, PositionSide
from ..core.events import SCHEMA
from ..core.ingest import placeable
from ..core.health import FeedHealth
from ..errors import ConfigError
from . import Feed

log = logging.getLogger("portfolio_ws.feed")

# Text fields hold exact ``str``s (a subclass could print as anything) or these str-Enums.
_WIRE_ENUMS = frozenset({OrderStatus, OrderSide, PositionSide})


def event_problem(event: Any) -> str | None:
    """Why ``event`` can't be taken in, or None. Checks what the engine and the wire format rely on
    (an event type; required fields present; finite ``Decimal``s, aware times, non-empty strings),
    cheaply: events are validated when built, this catches objects forced past that."""
    specs = SCHEMA.get(type(event))  # the events' one schema table
    if specs is None:
        return f"not an event: {type(event).__name__}"
    for name, kind, optional, _, _ in specs:
        value = getattr(event, name, None)
        if value is None:
            if optional:
                continue
            return f"{type(event).__name__}.{name} missing"
        if kind is Decimal:
            ok = type(value) is Decimal and value.is_finite()
        elif kind is datetime:
            ok = isinstance(value, datetime) and value.tzinfo is not None and placeable(value)
        else:
            ok = (type(value) is str or type(value) in _WIRE_ENUMS) and value != ""
        if not ok:
            return f"{type(event).__name__}.{name} has a bad value ({type(value).__name__})"
    return None


class GuardedBus(EventBus):
    """The bus as the feed sees it: what isn't a sound event is dropped (and counted) here, so it
    never reaches the engine or any other subscriber."""

    def __init__(self, bus: EventBus, guard: "FeedGuard") -> None:
        self._bus = bus
        self._guard = guard
        self.node_id = bus.node_id

    def publish(self, event: Any, position: str | None = None) -> None:
        try:
            problem = event_problem(event)
        except Exception as exc:  # an object whose attributes raise
            self._guard.event_failed(f"unreadable {type(event).__name__}", exc)
            return
        if problem is not None:
            self._guard.event_failed(problem)
            return
        self._bus.publish(event, position)

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        return self._bus.subscribe(handler)

    def subscribe_numbered(self, handler: NumberedHandler) -> Callable[[], None]:
        return self._bus.subscribe_numbered(handler)

    def health(self) -> dict[str, Any] | None:
        return self._bus.health()

    async def positions(self, user_ids: list[str]) -> dict[str, str]:
        return await self._bus.positions(user_ids)

    async def restore_positions(self, positions: dict[str, str]) -> None:
        await self._bus.restore_positions(positions)



class FeedGuard:
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.errors = 0
        self.rejected_events = 0
        self.failure: str | None = None  # set when the feed can't be trusted to deliver any more
        self.stopping = False
        self._logged_at = float("-inf")
        self._unlogged = 0

    async def start(self, bus: EventBus) -> None:
        """``feed.start(bus)``; a failure is counted and reported, never raised. Tasks the feed
        starts meanwhile are watched: one that dies with an exception marks the feed failed."""
        before = asyncio.all_tasks()
        try:
            await self.feed.start(GuardedBus(bus, self))
        except ConfigError:
            raise  # a bad setting, not a feed fault: the command stops with one line, serving nothing
        except Exception as exc:
            self._failed("start()", exc)
        for task in asyncio.all_tasks() - before:
            task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved: no "exception was never retrieved" later
        if exc is not None and not self.stopping:
            self._failed("a background task", exc)

    def _failed(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        self.failure = f"{where} raised {type(exc).__name__}"
        log.error("feed %s: %s raised %s; it is reported offline", self.feed.source, where,
                  type(exc).__name__, exc_info=exc)

    def event_failed(self, problem: str, exc: BaseException | None = None) -> None:
        """An event that was refused, or that failed in the engine: counted and logged (at most a
        line a second, so a feed spewing garbage can't flood the log). Never the event's content."""
        self.errors += 1
        self.rejected_events += 1
        now = time.monotonic()
        if now - self._logged_at < 1.0:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more since the last line)" if self._unlogged else ""
        self._logged_at, self._unlogged = now, 0
        log.warning("feed %s: event dropped: %s%s", self.feed.source, problem, more,
                    exc_info=exc if exc is not None else None)

    async def stop(self) -> None:
        self.stopping = True
        await self.feed.stop()

    def health(self) -> FeedHealth:
        try:
            health = self.feed.health()
            if not isinstance(health, FeedHealth):
                raise TypeError(f"health() returned {type(health).__name__}")
        except Exception as exc:
            return FeedHealth(source=str(getattr(self.feed, "source", "unknown")), connected=False,
                              details={"failure": f"health() raised {type(exc).__name__}"})
        if self.failure is not None:
            return replace(health, connected=False, details={**health.details, "failure": self.failure})
        return health
