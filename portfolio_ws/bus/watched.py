"""Awaiting a condition of state that changes in the background, instead of polling it.

``Conditions.when(condition)`` is a future resolved once ``condition()`` holds: at once, or at the
first ``changed()`` after which it does. The service calls ``changed`` after each input it handles
(``Service.when``); the Redis bus after each change of its connection flags and counters
(``Watched``, ``RedisBus.when``): a reconnect or a publish has no future of its own to await.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Iterable


class Conditions:
    def __init__(self) -> None:
        self._awaited: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def when(self, condition: Callable[[], bool]) -> "asyncio.Future[None]":
        """Resolved once ``condition()`` holds; cancel it to stop waiting."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if condition():
            future.set_result(None)
        else:
            self._awaited.append((condition, future))
        return future

    def changed(self) -> None:
        """Re-check every awaited condition (a waiter's exception is the waiter's, never ours)."""
        if not self._awaited:
            return
        waiting, self._awaited = self._awaited, []
        for condition, future in waiting:
            if future.done():  # cancelled: the waiter gave up
                continue
            try:
                held = condition()
            except Exception as exc:
                future.set_exception(exc)
                continue
            if held:
                future.set_result(None)
            else:
                self._awaited.append((condition, future))


class Counters(dict[str, int]):
    """Named counts, each change reported to ``on_change``."""

    def __init__(self, names: Iterable[str], on_change: Callable[[], None]) -> None:
        super().__init__(dict.fromkeys(names, 0))
        self._on_change = on_change

    def __setitem__(self, name: str, value: int) -> None:
        super().__setitem__(name, value)
        self._on_change()


class Watched:
    """A shared bus's connection flags and counters, whose changes ``when`` can await."""

    def _watch(self, counters: Iterable[str]) -> None:
        self._conditions = Conditions()
        self._publisher_connected, self._subscriber_connected = True, False
        self.counters = Counters(counters, self._conditions.changed)

    def when(self, condition: Callable[[], bool]) -> "asyncio.Future[None]":
        """A future resolved once ``condition()`` holds: at once, or after the change of a
        connection flag or a counter that makes it hold."""
        return self._conditions.when(condition)

    @property
    def publisher_connected(self) -> bool:
        return self._publisher_connected

    @publisher_connected.setter
    def publisher_connected(self, value: bool) -> None:
        self._publisher_connected = value
        self._conditions.changed()

    @property
    def subscriber_connected(self) -> bool:
        return self._subscriber_connected

    @subscriber_connected.setter
    def subscriber_connected(self, value: bool) -> None:
        self._subscriber_connected = value
        self._conditions.changed()
