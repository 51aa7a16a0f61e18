"""What the SQLite session store adds to the contract: storage details."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from portfolio_ws.auth.sessions import SessionLifetime, session_digest
from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
from portfolio_ws.auth.users import UserStore
from portfolio_ws.settings import AuthSettings

T0 = 1_767_225_600.0


def _rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM sessions").fetchall()


async def test_only_the_digest_of_the_id_is_stored(io_loop, tmp_path):
    path = tmp_path / "auth.sqlite3"
    store = SQLiteSessionStore(str(path), SessionLifetime(100, 1000))
    session_id = await store.create("user-1", T0)
    await store.close()
    rows = _rows(path)
    assert rows == [(session_digest(session_id), "user-1", T0, T0)]
    for name in ("auth.sqlite3", "auth.sqlite3-wal"):
        file = tmp_path / name
        if file.exists():
            assert session_id.encode() not in file.read_bytes()


async def test_sessions_survive_reopening(io_loop, tmp_path):
    path = str(tmp_path / "auth.sqlite3")
    store = SQLiteSessionStore(path, SessionLifetime(100, 1000))
    session_id = await store.create("user-1", T0)
    await store.close()
    reopened = SQLiteSessionStore(path, SessionLifetime(100, 1000))
    session = await reopened.lookup(session_id, T0 + 1)
    assert session is not None and session.user_id == "user-1"


async def test_lookups_within_the_touch_interval_do_not_write(io_loop, tmp_path):
    path = tmp_path / "auth.sqlite3"
    store = SQLiteSessionStore(str(path), SessionLifetime(1800, 43200))  # touch every 60 s
    session_id = await store.create("user-1", T0)
    for offset in (1, 30, 59.9):
        session = await store.lookup(session_id, T0 + offset)
        assert session is not None and session.last_seen_at == T0
    assert _rows(path)[0][3] == T0
    session = await store.lookup(session_id, T0 + 60)
    assert session is not None and session.last_seen_at == T0 + 60
    assert _rows(path)[0][3] == T0 + 60


async def test_expired_lookup_deletes_the_row(io_loop, tmp_path):
    path = tmp_path / "auth.sqlite3"
    store = SQLiteSessionStore(str(path), SessionLifetime(100, 1000))
    session_id = await store.create("user-1", T0)
    assert await store.lookup(session_id, T0 + 100) is None
    assert _rows(path) == []


async def test_shares_the_file_with_the_user_store(io_loop, tmp_path, cheap_hasher):
    settings = AuthSettings(database=str(tmp_path / "auth.sqlite3"))
    users = UserStore(settings.database, hasher=cheap_hasher)
    sessions = SQLiteSessionStore.from_settings(settings)
    user = users.add("alice", "correct horse")
    session_id = await sessions.create(user.user_id, T0)
    session = await sessions.lookup(session_id, T0 + 1)
    assert session is not None and users.get(session.user_id) == user


async def test_memory_database(io_loop):
    store = SQLiteSessionStore(":memory:", SessionLifetime(100, 1000))
    session_id = await store.create("user-1", T0)
    assert await store.lookup(session_id, T0) is not None
