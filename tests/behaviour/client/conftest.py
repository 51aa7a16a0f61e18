"""Fixtures for client tests: fast timings, a recorder of everything a client emits, and clients
that are closed when the test ends."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from portfolio_ws.client import PortfolioClient, Timings

# Fast backoff so reconnects happen within milliseconds; no pings unless a test asks for them.
FAST = Timings(backoff_base=0.01, backoff_cap=0.04, try_again_later=0.2, ping_interval=600, pong_timeout=600,
               connect_timeout=5, poll_interval=0.05, poll_after_failures=10, retry_while_polling=0.2)
WAIT = 10.0


class Recorder:
    """Every event a client dispatches, in order, with awaitable waits (no sleeps)."""

    def __init__(self, client: PortfolioClient) -> None:
        self.events: list[Any] = []
        self.pos = 0
        self._changed = asyncio.Event()
        client.on(self._add)

    def _add(self, event: Any) -> None:
        self.events.append(event)
        self._changed.set()

    async def next(self, kind: type | tuple[type, ...], where: Callable[[Any], bool] = lambda e: True,
                   timeout: float = WAIT) -> Any:
        """The next event (after the last one returned) of ``kind`` satisfying ``where``."""
        async def scan() -> Any:
            while True:
                while self.pos < len(self.events):
                    event = self.events[self.pos]
                    self.pos += 1
                    if isinstance(event, kind) and where(event):
                        return event
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    def since(self, kind: type) -> list[Any]:
        return [e for e in self.events[self.pos:] if isinstance(e, kind)]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def make_client(io_loop: Any, make_server: Any) -> Any:
    """``client, rec = make_client(server, session_id=..., **kwargs)``: not started yet."""
    clients: list[PortfolioClient] = []

    def factory(server: Any, **kwargs: Any) -> tuple[PortfolioClient, Recorder]:
        kwargs.setdefault("timings", FAST)
        kwargs.setdefault("random", lambda: 0.5)
        client = PortfolioClient(server.url, **kwargs)
        clients.append(client)
        return client, Recorder(client)

    yield factory
    for client in clients:
        io_loop.run_sync(client.close, timeout=10)
