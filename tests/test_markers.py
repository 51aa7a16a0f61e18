"""The markers hold: a test that starts redis-server or PostgreSQL without its marker is stopped at
once, so the quick selection (README) can never come to need a service."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer


def test_an_unmarked_test_cannot_start_redis_server(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    with pytest.raises(RuntimeError, match="not marked redis: add @pytest.mark.redis"):
        server.start()
    assert server.process is None


def test_an_unmarked_test_cannot_start_postgresql() -> None:
    server = PostgresServer()
    try:
        with pytest.raises(RuntimeError, match="not marked postgres: add @pytest.mark.postgres"):
            server.start()
        assert server.process is None
    finally:
        server.stop()  # removes its folder


def test_the_markers_are_registered(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert {"slow", "browser", "redis", "postgres"} <= registered
    assert pytestconfig.getoption("strict_markers")
