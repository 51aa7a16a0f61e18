"""The SessionStore contract, run against every implementation: SQLite, PostgreSQL (a fresh database
on a private server the test session starts), and SQLite cached in Redis (a private redis-server per
test), as a cluster runs it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest

from portfolio_ws.auth.sessions import SessionLifetime, SessionStore
from portfolio_ws.auth.sessions.postgres import PostgresSessionStore
from portfolio_ws.auth.sessions.redis import RedisSessionCache
from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401  (a fixture)
from tests.redis_server import RedisServer

IDLE = 100.0
ABSOLUTE = 1000.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

StoreFactory = Callable[[SessionLifetime], Awaitable[SessionStore]]


def _sqlite(tmp_path: Path) -> tuple[StoreFactory, Callable[[], None]]:
    async def make(lifetime: SessionLifetime) -> SessionStore:
        return SQLiteSessionStore(str(tmp_path / "auth.sqlite3"), lifetime)

    return make, lambda: None


def _redis(tmp_path: Path) -> tuple[StoreFactory, Callable[[], None]]:
    server = RedisServer(tmp_path / "redis").start()

    async def make(lifetime: SessionLifetime) -> SessionStore:
        return RedisSessionCache(SQLiteSessionStore(str(tmp_path / "auth.sqlite3"), lifetime), server.url)

    return make, server.stop


def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[StoreFactory, Callable[[], None]]:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database()  # every store of one test shares it, as nodes would

    async def make(lifetime: SessionLifetime) -> SessionStore:
        return await PostgresSessionStore.connect(url, lifetime)

    return make, lambda: None


# name -> ((tmp_path, request) -> (store factory, cleanup))
FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], tuple[StoreFactory, Callable[[], None]]]] = {
    "sqlite": lambda path, _: _sqlite(path), "redis": lambda path, _: _redis(path), "postgres": _postgres}


@pytest.fixture(params=sorted(FACTORIES))
def make_store(request: pytest.FixtureRequest, io_loop: Any, tmp_path: Path) -> Iterator[StoreFactory]:
    factory, cleanup = FACTORIES[request.param](tmp_path, request)
    stores: list[SessionStore] = []

    async def make(lifetime: SessionLifetime) -> SessionStore:
        stores.append(await factory(lifetime))
        return stores[-1]

    yield make
    for store in stores:
        io_loop.run_sync(store.close)
    cleanup()


def lifetime(touch: float | None = None) -> SessionLifetime:
    return SessionLifetime(IDLE, ABSOLUTE, touch)


async def test_create_returns_distinct_256_bit_urlsafe_ids(io_loop, make_store):
    store = await make_store(lifetime())
    ids = {await store.create("user-1", T0) for _ in range(50)}
    assert len(ids) == 50
    for session_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session_id)


async def test_lookup_returns_the_session(io_loop, make_store):
    store = await make_store(lifetime())
    session_id = await store.create("user-1", T0)
    session = await store.lookup(session_id, T0 + 1)
    assert session is not None
    assert (session.session_id, session.user_id, session.created_at) == (session_id, "user-1", T0)
    assert T0 <= session.last_seen_at <= T0 + 1


@pytest.mark.parametrize("bogus", ["", "nope", "x" * 43, "é" * 43, "a" * 10_000])
async def test_unknown_or_malformed_ids_are_not_found(io_loop, make_store, bogus):
    store = await make_store(lifetime())
    await store.create("user-1", T0)
    assert await store.lookup(bogus, T0) is None
    assert await store.delete(bogus) is None


async def test_repr_never_shows_the_id(io_loop, make_store):
    store = await make_store(lifetime())
    session_id = await store.create("user-1", T0)
    session = await store.lookup(session_id, T0)
    assert session_id not in repr(session)


async def test_idle_session_expires(io_loop, make_store):
    store = await make_store(lifetime())
    kept = await store.create("user-1", T0)
    dropped = await store.create("user-1", T0)
    assert await store.lookup(kept, T0 + IDLE - 1) is not None
    assert await store.lookup(dropped, T0 + IDLE) is None
    # Expired stays expired, even looked up with an earlier clock.
    assert await store.lookup(dropped, T0) is None


async def test_activity_extends_the_idle_timeout(io_loop, make_store):
    store = await make_store(lifetime())
    session_id = await store.create("user-1", T0)
    now = T0
    for _ in range(8):  # 8 × 90 s, well past one idle timeout, each lookup within it
        now += IDLE * 0.9
        assert await store.lookup(session_id, now) is not None


async def test_absolute_timeout_ends_even_an_active_session(io_loop, make_store):
    store = await make_store(lifetime())
    session_id = await store.create("user-1", T0)
    now = T0
    while now + IDLE / 2 < T0 + ABSOLUTE:
        now += IDLE / 2
        assert await store.lookup(session_id, now) is not None
    assert await store.lookup(session_id, T0 + ABSOLUTE) is None


async def test_last_seen_lags_at_most_the_touch_interval(io_loop, make_store):
    store = await make_store(lifetime(touch=10.0))
    session_id = await store.create("user-1", T0)
    for step in range(1, 40):
        now = T0 + step * 3.0
        session = await store.lookup(session_id, now)
        assert session is not None
        assert now - 10.0 < session.last_seen_at <= now


async def test_delete_ends_one_session(io_loop, make_store):
    store = await make_store(lifetime())
    gone = await store.create("user-1", T0)
    kept = await store.create("user-1", T0)
    deleted = await store.delete(gone)
    assert deleted is not None
    assert (deleted.session_id, deleted.user_id, deleted.created_at) == (gone, "user-1", T0)
    assert await store.lookup(gone, T0 + 1) is None
    assert await store.delete(gone) is None
    assert await store.lookup(kept, T0 + 1) is not None


async def test_delete_for_user_ends_only_that_users_sessions(io_loop, make_store):
    store = await make_store(lifetime())
    alices = [await store.create("user-alice", T0) for _ in range(3)]
    bob = await store.create("user-bob", T0)
    assert await store.delete_for_user("user-alice") == 3
    assert await store.delete_for_user("user-alice") == 0
    for session_id in alices:
        assert await store.lookup(session_id, T0 + 1) is None
    session = await store.lookup(bob, T0 + 1)
    assert session is not None and session.user_id == "user-bob"


async def test_purge_expired_removes_only_expired_sessions(io_loop, make_store):
    store = await make_store(lifetime())
    old = await store.create("user-1", T0)  # idle-expired at T0 + IDLE
    ancient = await store.create("user-2", T0 - ABSOLUTE)  # absolutely expired at T0
    fresh = await store.create("user-1", T0 + IDLE / 2)
    assert await store.purge_expired(T0 + IDLE) == 2
    assert await store.purge_expired(T0 + IDLE) == 0
    assert await store.lookup(fresh, T0 + IDLE) is not None
    assert await store.delete(old) is None
    assert await store.delete(ancient) is None


async def test_sessions_are_independent_of_each_other(io_loop, make_store):
    store = await make_store(lifetime())
    first = await store.create("user-1", T0)
    second = await store.create("user-1", T0 + 50)
    assert await store.lookup(first, T0 + IDLE) is None
    assert await store.lookup(second, T0 + IDLE) is not None
