"""In-process event bus: synchronous fan-out on the caller's thread (the IOLoop thread)."""

from __future__ import annotations

import logging
from typing import Callable

from . import EventBus, Handler
from ..core.events import Event

log = logging.getLogger(__name__)


class InMemoryBus(EventBus):
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def publish(self, event: Event, position: str | None = None) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("event handler failed for %s", type(event).__name__)

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe
