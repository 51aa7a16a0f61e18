"""The user stores' contract, run against SQLite and a real PostgreSQL (its own server, started by
the test session): adding, checking, listing and removing users. SQLite's file specifics last."""

from __future__ import annotations

import re
import sqlite3
import stat
from typing import Any, Iterator

import pytest
from argon2 import PasswordHasher

from portfolio_ws.auth.users import User, UserStore, UserStoreBase, open_user_store
from portfolio_ws.errors import UsageError
from tests.builders import CLOCK_START as T0, SteppingClock


@pytest.fixture
def store(io_loop: Any, database: str, cheap_hasher: PasswordHasher) -> Iterator[UserStoreBase]:
    store = open_user_store(database, hasher=cheap_hasher, clock=SteppingClock())
    yield store
    io_loop.run_sync(store.aclose)


def test_add_returns_the_user(store):
    user = store.add("alice", "correct horse", admin=True)
    assert re.fullmatch(r"user-[0-9a-f]{12}", user.user_id)
    assert (user.username, user.is_admin, user.created_at) == ("alice", True, T0 + 1)
    assert store.get(user.user_id) == user
    assert store.by_username("alice") == user


def test_user_ids_are_random(store):
    ids = {store.add(f"user{i}", "correct horse").user_id for i in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize(
    "username", ["", "a" * 65, "with space", "ünïcode", "semi;colon", "new\nline"]
)
def test_bad_usernames_are_refused(store, username):
    with pytest.raises(UsageError, match="invalid username"):
        store.add(username, "correct horse")
    assert store.list() == []


@pytest.mark.parametrize("value", [None, 12345678, ["correct horse"], {"a": "b"}, True])
def test_a_username_or_password_not_a_string_is_refused_as_such(store, value):
    with pytest.raises(UsageError, match="^username must be a string$"):
        store.add(value, "correct horse")
    with pytest.raises(UsageError, match="^password must be a string$"):
        store.add("alice", value)
    assert store.list() == []


@pytest.mark.parametrize("username", ["a", "a" * 64, "Alice.Smith@example.com", "x_y-z"])
def test_good_usernames(store, username):
    assert store.add(username, "correct horse").username == username


def test_short_and_huge_passwords_are_refused_without_quoting_them(store):
    with pytest.raises(UsageError, match="at least 8") as short:
        store.add("alice", "s3cret!")
    assert "s3cret!" not in str(short.value)
    with pytest.raises(UsageError, match="at most 1024"):
        store.add("alice", "x" * 1025)
    assert store.add("alice", "12345678").username == "alice"


def test_duplicates_are_refused_whatever_the_case(store):
    store.add("alice", "correct horse")
    for name in ("alice", "ALICE"):
        with pytest.raises(UsageError, match="user 'alice' already exists|user 'ALICE' already exists"):
            store.add(name, "another password")
    assert len(store.list()) == 1


def test_authenticate(store):
    alice = store.add("alice", "correct horse")
    assert store.authenticate("alice", "correct horse") == alice
    assert store.authenticate("Alice", "correct horse") == alice
    assert store.authenticate("alice", "correct horsE") is None
    assert store.authenticate("alice", "") is None
    assert store.authenticate("bob", "correct horse") is None
    assert store.authenticate(None, "correct horse") is None  # type: ignore[arg-type]


async def test_authenticate_async(io_loop, store):
    alice = store.add("alice", "correct horse")
    assert await store.authenticate_async("alice", "correct horse") == alice
    assert await store.authenticate_async("ALICE", "correct horse") == alice
    assert await store.authenticate_async("alice", "wrong horse") is None
    assert await store.authenticate_async("nobody", "correct horse") is None
    assert await store.authenticate_async(None, "correct horse") is None  # type: ignore[arg-type]


async def test_get_async(io_loop, store):
    alice = store.add("alice", "correct horse")
    assert await store.get_async(alice.user_id) == alice
    assert await store.get_async("user-000000000000") is None


def _stored_hash(store: UserStoreBase, username: str) -> str:
    [(value,)] = store._fetchall("SELECT password_hash FROM users WHERE username = %s", (username,))
    return str(value)


def test_login_rehashes_outdated_hashes(io_loop, database, cheap_hasher):
    first = open_user_store(database, hasher=cheap_hasher)
    first.add("alice", "correct horse")
    old = _stored_hash(first, "alice")
    assert old.startswith("$argon2id$")
    stronger = open_user_store(database, hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    try:
        assert stronger.authenticate("alice", "wrong horse") is None
        assert _stored_hash(first, "alice") == old  # a failed login changes nothing
        assert stronger.authenticate("alice", "correct horse") is not None
        new = _stored_hash(first, "alice")
        assert new != old and "m=16,t=2,p=1" in new
        assert stronger.authenticate("alice", "correct horse") is not None
    finally:
        first.close()
        stronger.close()


def test_two_stores_on_one_database_see_each_others_users(database, cheap_hasher):
    """Nodes on different hosts share the database: a user added through one is there on the other."""
    a, b = open_user_store(database, hasher=cheap_hasher), open_user_store(database, hasher=cheap_hasher)
    try:
        alice = a.add("alice", "correct horse")
        assert b.authenticate("alice", "correct horse") == alice
        with pytest.raises(UsageError, match="already exists"):
            b.add("Alice", "correct horse")
        assert b.remove("alice") and a.get(alice.user_id) is None
    finally:
        a.close()
        b.close()


def test_an_unreachable_postgresql_is_one_line_naming_the_setting():
    from tests.redis_server import free_port

    url = f"postgresql://pws:hunter22@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(UsageError, match=r"^cannot connect to postgresql://pws@127.0.0.1:\d+/nothing") as failure:
        open_user_store(url)
    assert "hunter22" not in str(failure.value)  # never the password


def test_list_is_oldest_first(store):
    bob = store.add("bob", "correct horse")
    alice = store.add("alice", "correct horse", admin=True)
    assert store.list() == [bob, alice]


def test_remove(store):
    alice = store.add("alice", "correct horse")
    bob = store.add("bob", "correct horse")
    assert store.remove("ALICE") is True
    assert store.remove("alice") is False
    assert store.get(alice.user_id) is None
    assert store.authenticate("alice", "correct horse") is None
    assert store.list() == [bob]


def test_password_hash_and_password_are_never_exposed(store):
    user = store.add("alice", "correct horse")
    assert set(vars(user)) == {"user_id", "username", "is_admin", "created_at"}
    assert "correct horse" not in repr(user)


def test_database_file(tmp_path, cheap_hasher):
    path = tmp_path / "auth.sqlite3"
    store = UserStore(str(path), hasher=cheap_hasher)
    alice = store.add("alice", "correct horse")
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds password hashes
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert b"correct horse" not in path.read_bytes()
    assert UserStore(str(path), hasher=cheap_hasher).get(alice.user_id) == alice


def test_unopenable_database_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot create database"):
        UserStore(str(tmp_path / "missing-dir" / "auth.sqlite3"))


def test_memory_database(cheap_hasher):
    store = UserStore(":memory:", hasher=cheap_hasher)
    user = store.add("alice", "correct horse")
    assert store.list() == [user]
    assert isinstance(user, User)


async def test_a_user_added_without_a_password_never_logs_in_and_is_removed_by_id(store):
    user = await store.add_async("platform-only", None)
    assert store.get(user.user_id) == user and not user.is_admin
    for password in ("!", "", "correct horse"):
        assert store.authenticate("platform-only", password) is None
        assert await store.authenticate_async("platform-only", password) is None
    with pytest.raises(UsageError, match="already exists"):
        await store.add_async("PLATFORM-ONLY", "correct horse")
    with_password = await store.add_async("carol", "correct horse")
    assert await store.authenticate_async("carol", "correct horse") == with_password
    assert await store.by_username_async("Carol") == with_password
    assert await store.remove_async(user.user_id)
    assert not await store.remove_async(user.user_id)
    assert store.get(user.user_id) is None
