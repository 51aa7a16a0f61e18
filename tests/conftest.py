"""Shared fixtures. ``make_server`` starts a real portfolio-ws server on a free loopback port."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import TestServer, start_server


@pytest.fixture
def make_server(io_loop: Any, tmp_path: Any) -> Any:
    servers: list[TestServer] = []

    async def factory(feed: Any = None, clock: Any = None, **overrides: Any) -> TestServer:
        settings = {key.replace("__", "."): value for key, value in overrides.items()}
        kwargs = {"clock": clock} if clock is not None else {}
        server = await start_server(tmp_path, settings, feed=feed, **kwargs)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        io_loop.run_sync(server.stop, timeout=10)
