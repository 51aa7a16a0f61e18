"""The API key stores' contract, run against SQLite and a real PostgreSQL (its own server, started
by the test session): adding, listing, verifying and revoking keys, only digests stored."""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import pytest

from portfolio_ws.auth.apikeys import ApiKeyStoreBase
from portfolio_ws.auth.stores import open_key_store
from portfolio_ws.errors import UsageError
from tests.builders import CLOCK_START as T0, SteppingClock


@pytest.fixture
def store(io_loop: Any, database: str) -> Iterator[ApiKeyStoreBase]:
    store = open_key_store(database, SteppingClock())
    yield store
    io_loop.run_sync(store.aclose)


def stored_rows(store: ApiKeyStoreBase) -> str:
    return repr(store._fetchall("SELECT * FROM api_keys"))


def test_a_key_verifies_and_only_its_digest_is_stored(store):
    record, key = store.add("platform", ["publish"])
    assert key.startswith(f"pws_{record.key_id}_") and record.scopes == {"publish"}
    assert (record.name, record.created_at) == ("platform", T0 + 1)
    secret = key.split("_", 2)[2]
    assert secret not in stored_rows(store) and hashlib.sha256(secret.encode()).hexdigest() in stored_rows(store)
    assert store.verify(key) == record
    assert store.list() == [record]


async def test_verify_async_answers_as_verify(store):
    record, key = store.add("platform", ["publish", "read"])
    assert await store.verify_async(key) == record
    assert await store.verify_async(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    assert await store.verify_async("pws_000000000000_" + "A" * 43) is None
    assert await store.verify_async("not a key") is None


def test_a_forged_or_malformed_key_does_not_verify(store):
    _, key = store.add("platform", ["publish"])
    assert store.verify(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    for wrong in ("", "pws_", key + "x", key.replace("pws_", "pwx_"), "pws_zzzzzzzzzzzz_" + "A" * 43):
        assert store.verify(wrong) is None


def test_revoked_keys_stop_verifying_and_names_are_unique_without_case(store):
    _, key = store.add("platform", ["publish"])
    with pytest.raises(UsageError, match="exists"):
        store.add("PLATFORM", ["publish"])
    assert store.revoke("Platform")
    assert not store.revoke("platform")
    assert store.verify(key) is None and store.list() == []
    _, again = store.add("platform", ["read"])  # the name is free again
    assert store.verify(again).scopes == {"read"}


@pytest.mark.parametrize("name,scopes,message", [
    ("bad name!", ["publish"], "invalid key name"), ("", ["publish"], "invalid key name"),
    ("x" * 65, ["publish"], "invalid key name"), ("platform", [], "unknown scope"),
    ("platform", ["everything"], "unknown scope everything"),
])
def test_bad_names_and_scopes_are_refused(store, name, scopes, message):
    with pytest.raises(UsageError, match=message):
        store.add(name, scopes)
    assert store.list() == []


def test_keys_are_listed_oldest_first(store):
    names = ["b-key", "a-key", "c-key"]
    for name in names:
        store.add(name, ["publish"])
    assert [k.name for k in store.list()] == names


def test_a_second_store_on_the_same_database_sees_new_and_revoked_keys(store, database):
    other = open_key_store(database)
    try:
        _, key = store.add("platform", ["publish"])
        assert other.verify(key) is not None  # e.g. the CLI adds, the running server reads
        store.revoke("platform")
        assert other.verify(key) is None
    finally:
        other.close()
