"""In-process event bus: synchronous fan-out on the caller's thread (the IOLoop thread)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from . import EventBus, Handler, SyncHandler, subscribe_to
from ..core.events import Event
from ..core.sync import Sync

log = logging.getLogger(__name__)


class InMemoryBus(EventBus):
    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._sync_handlers: list[SyncHandler] = []

    def publish(self, event: Event, position: str | None = None) -> None:
        self._fan_out(self._handlers, type(event).__name__, event)

    def publish_sync(self, sync: Sync) -> asyncio.Future[int | None]:
        self._fan_out(self._sync_handlers, "sync", sync, None)
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def _fan_out(self, handlers: list[Any], what: str, *args: Any) -> None:
        for handler in list(handlers):
            try:
                handler(*args)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("event handler failed for %s", what)

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        return subscribe_to(self._handlers, handler)

    def subscribe_syncs(self, handler: SyncHandler) -> Callable[[], None]:
        return subscribe_to(self._sync_handlers, handler)
