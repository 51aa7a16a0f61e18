"""RedisSessionStore beyond the contract: one Redis, several nodes, one set of sessions."""

from __future__ import annotations

from typing import Any

from portfolio_ws.auth.sessions import SessionLifetime
from portfolio_ws.auth.sessions.redis import RedisSessionStore
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

T0 = 1_767_225_600.0


async def test_a_login_on_one_node_is_valid_on_the_other_and_logout_ends_it_everywhere(
        io_loop: Any, redis_server: RedisServer) -> None:
    lifetime = SessionLifetime(100.0, 1000.0)
    a, b = RedisSessionStore(redis_server.url, lifetime), RedisSessionStore(redis_server.url, lifetime)
    try:
        session_id = await a.create("user-1", T0)
        seen = await b.lookup(session_id, T0 + 1)
        assert seen is not None and seen.user_id == "user-1"
        assert await b.delete(session_id) is not None
        assert await a.lookup(session_id, T0 + 2) is None
    finally:
        await a.close()
        await b.close()


async def test_only_digests_are_stored(io_loop: Any, redis_server: RedisServer) -> None:
    store = RedisSessionStore(redis_server.url, SessionLifetime(100.0, 1000.0))
    try:
        session_id = await store.create("user-1", T0)
        keys = [k async for k in store._redis.scan_iter("*")]
        assert keys and all(session_id not in k for k in keys)
        for key in keys:
            if key.startswith("pws:session:"):
                assert 0 < await store._redis.ttl(key) <= 100 + 60  # the backstop TTL
    finally:
        await store.close()
