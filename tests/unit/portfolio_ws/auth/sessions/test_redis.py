"""RedisSessionCache beyond the contract: one database, several nodes, Redis only a cache of it -
a login is valid everywhere, and survives Redis restarting empty or being down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portfolio_ws.auth.sessions import SessionLifetime
from portfolio_ws.auth.sessions.redis import CACHE_SECONDS, RedisSessionCache
from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

T0 = 1_767_225_600.0
LIFETIME = SessionLifetime(100.0, 1000.0)


def node(tmp_path: Path, redis: RedisServer) -> RedisSessionCache:
    return RedisSessionCache(SQLiteSessionStore(str(tmp_path / "users.sqlite3"), LIFETIME), redis.url)


async def test_a_login_on_one_node_is_valid_on_the_other_and_logout_ends_it_everywhere(
        io_loop: Any, tmp_path: Path, redis_server: RedisServer) -> None:
    a, b = node(tmp_path, redis_server), node(tmp_path, redis_server)
    try:
        session_id = await a.create("user-1", T0)
        seen = await b.lookup(session_id, T0 + 1)
        assert seen is not None and seen.user_id == "user-1"
        assert await b.delete(session_id) is not None
        assert await a.lookup(session_id, T0 + 2) is None
        other = await a.create("user-2", T0)
        assert await b.lookup(other, T0 + 1) is not None
        assert await b.delete_for_user("user-2") == 1
        assert await a.lookup(other, T0 + 2) is None and await a.still_valid(other, T0 + 2) is False
    finally:
        await a.close()
        await b.close()


async def test_sessions_survive_redis_restarting_empty_and_being_down(
        io_loop: Any, tmp_path: Path, redis_server: RedisServer) -> None:
    store = node(tmp_path, redis_server)
    try:
        session_id = await store.create("user-1", T0)
        assert await store.still_valid(session_id, T0 + 1) is True
        redis_server.restart()  # empty: no persistence
        assert await store.still_valid(session_id, T0 + 2) is True  # the first check after it: no exception
        assert (await store.lookup(session_id, T0 + 3)) is not None
        assert await store._redis.exists(f"pws:session:{_digest(session_id)}") == 1  # cached again
        redis_server.stop()
        assert await store.still_valid(session_id, T0 + 4) is True
        later = await store.create("user-1", T0 + 5)  # logins go on too
        assert await store.lookup(later, T0 + 6) is not None
        assert await store.delete(session_id) is not None
        assert await store.lookup(session_id, T0 + 7) is None
        assert store.errors > 0
        redis_server.start()
        assert await store.lookup(later, T0 + 8) is not None
    finally:
        redis_server.start()
        await store.close()


async def test_only_digests_are_cached_and_for_a_minute_at_most(
        io_loop: Any, tmp_path: Path, redis_server: RedisServer) -> None:
    store = node(tmp_path, redis_server)
    try:
        session_id = await store.create("user-1", T0)
        keys = [k async for k in store._redis.scan_iter("*")]
        assert keys and all(session_id not in k for k in keys)
        for key in keys:
            assert 0 < await store._redis.ttl(key) <= CACHE_SECONDS + 1
    finally:
        await store.close()


def _digest(session_id: str) -> str:
    from portfolio_ws.auth.sessions import session_digest

    return session_digest(session_id)
