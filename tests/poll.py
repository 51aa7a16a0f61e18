"""Polling what a test cannot await: another process, a Redis server, a feed's background task.

What the test's own server holds is awaited instead, never polled: ``server.until`` (``Service.when``),
``RedisBus.when``, ``LeaderFeed.when``, ``EdgeServer.when``, the local Alpaca's ``wait_for``. A poll is
for a change nothing in this process hears of; it has a deadline and says what did not happen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable, Union

Check = Callable[[], Union[Any, Awaitable[Any]]]


async def until(check: Check, timeout: float, what: str, every: float = 0.05) -> Any:
    """The first truthy value of ``check()`` (a function or a coroutine function), asked every
    ``every`` seconds; AssertionError ``"<what>: not within <timeout> s"`` once ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(every)
