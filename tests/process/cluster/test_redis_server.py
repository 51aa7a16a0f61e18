"""The test helper itself: a private redis-server, restartable on the same port."""

from __future__ import annotations

from pathlib import Path

from tests.redis_server import RedisServer, ping


def test_starts_answers_stops_and_restarts_on_the_same_port(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        assert ping(server.port)
        port = server.port
        server.stop()
        assert not ping(port)
        server.start()
        assert server.port == port and ping(port)
    finally:
        server.stop()


def test_two_servers_get_two_ports(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "a") as a, RedisServer(tmp_path / "b") as b:
        assert a.port != b.port and ping(a.port) and ping(b.port)
