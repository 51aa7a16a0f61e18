"""The linked-accounts store's contract, run against SQLite and a real PostgreSQL: link, list,
unlink, decrypt, rotate; the secret never readable in the stored bytes; no key or the wrong key a
clear error, never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from portfolio_ws.auth.linked import LinkedAccountStore, MissingKey, cipher, mask, new_key
from portfolio_ws.auth.postgres import is_postgres
from portfolio_ws.errors import UsageError
from tests.builders import SteppingClock

SECRET = "s3cr3t-VALUE-that-must-never-be-stored-plain"
KEY_ID = "AKLINKED0000000000001"


@pytest.fixture
def key() -> str:
    return new_key()


@pytest.fixture
def store(database: str, key: str) -> Iterator[LinkedAccountStore]:
    store = LinkedAccountStore(database, key, clock=SteppingClock())
    yield store
    store.close()


def stored_bytes(database: str) -> bytes:
    """Everything the database holds of the table: the SQLite file (and its WAL), or a PostgreSQL dump."""
    if is_postgres(database):
        with psycopg.connect(database) as conn, conn.cursor() as cursor:
            with cursor.copy("COPY linked_accounts TO STDOUT") as copy:
                return b"".join(bytes(chunk) for chunk in copy)
    return b"".join(p.read_bytes() for p in Path(database).parent.glob(Path(database).name + "*"))


def test_link_list_and_read_back(store: LinkedAccountStore) -> None:
    record = store.link("user-1", "keys", KEY_ID, SECRET, paper=False)
    assert (record.user_id, record.kind, record.key_id, record.paper, record.revision) == ("user-1", "keys", KEY_ID, False, 1)
    assert store.list() == [record]
    assert store.secret(record).value == SECRET and store.status(record) == "ok"
    assert SECRET not in repr(store.secret(record)) and SECRET not in repr(record)


def test_the_secret_is_not_in_the_stored_bytes(store: LinkedAccountStore, database: str) -> None:
    store.link("user-1", "keys", KEY_ID, SECRET, paper=True)
    store.link("user-2", "oauth", "", "oauth-" + SECRET, paper=True)
    stored = stored_bytes(database)
    assert KEY_ID.encode() in stored  # the dump does hold the table
    assert SECRET.encode() not in stored and SECRET[:16].encode() not in stored


def test_relinking_replaces_the_row_and_bumps_the_revision(store: LinkedAccountStore) -> None:
    first = store.link("user-1", "keys", KEY_ID, SECRET, paper=True)
    second = store.link("user-1", "oauth", "", "token-xyz", paper=False)
    assert (second.revision, second.created_at, second.kind) == (2, first.created_at, "oauth")
    assert store.list() == [second] and store.secret(second).value == "token-xyz"


def test_unlink(store: LinkedAccountStore) -> None:
    store.link("user-1", "keys", KEY_ID, SECRET, paper=True)
    assert store.unlink("user-1") and not store.unlink("user-1") and store.list() == []


@pytest.mark.parametrize("kind, key_id, secret, message", [
    ("keys", "", SECRET, "key id is empty"),
    ("keys", KEY_ID, "  ", "secret is empty"),
    ("oauth", "", "", "token is empty"),
    ("keys", KEY_ID, "two words", "spaces"),
    ("keys", KEY_ID, "x" * 5000, "too long"),
    ("password", KEY_ID, SECRET, "unknown credential kind"),
])
def test_bad_input_is_refused_and_stores_nothing(store: LinkedAccountStore, kind: str, key_id: str, secret: str,
                                                  message: str) -> None:
    with pytest.raises(UsageError, match=message):
        store.link("user-1", kind, key_id, secret, paper=True)
    assert store.list() == []


def test_without_the_key_listing_and_unlinking_work_and_secrets_are_refused(database: str, store: LinkedAccountStore) -> None:
    record = store.link("user-1", "keys", KEY_ID, SECRET, paper=True)
    keyless = LinkedAccountStore(database, "")
    try:
        assert keyless.list() == [record] and keyless.status(record) == "key not set"
        with pytest.raises(MissingKey, match="PORTFOLIO_WS_ACCOUNTS_KEY"):
            keyless.secret(record)
        with pytest.raises(MissingKey):
            keyless.link("user-2", "keys", KEY_ID, SECRET, paper=True)
        assert keyless.unlink("user-1")
    finally:
        keyless.close()


def test_the_wrong_key_is_a_clear_error(database: str, store: LinkedAccountStore) -> None:
    record = store.link("user-1", "keys", KEY_ID, SECRET, paper=True)
    other = LinkedAccountStore(database, new_key())
    try:
        assert other.status(record) == "cannot decrypt"
        with pytest.raises(UsageError, match="cannot decrypt") as raised:
            other.secret(record)
        assert SECRET not in str(raised.value)
    finally:
        other.close()


def test_rotation_new_key_first_then_the_old_one_can_go(database: str, store: LinkedAccountStore, key: str) -> None:
    record = store.link("user-1", "keys", KEY_ID, SECRET, paper=True)
    fresh = new_key()
    both = LinkedAccountStore(database, f"{fresh},{key}")
    only_new = LinkedAccountStore(database, fresh)
    try:
        assert both.secret(record).value == SECRET and only_new.status(record) == "cannot decrypt"
        assert both.rotate() == (1, 0)
        assert only_new.secret(record).value == SECRET and store.status(record) == "cannot decrypt"
        assert only_new.list()[0].revision == record.revision  # a running feed does not restart it
    finally:
        both.close()
        only_new.close()


def test_rotate_counts_what_no_key_decrypts(database: str, store: LinkedAccountStore) -> None:
    store.link("user-1", "keys", KEY_ID, SECRET, paper=True)
    stranger = LinkedAccountStore(database, new_key())
    try:
        assert stranger.rotate() == (0, 1)
    finally:
        stranger.close()


@pytest.mark.parametrize("keys", ["not-a-key", "x" * 44, f"{'A' * 43}=,nope"])
def test_a_malformed_key_is_named_never_quoted(keys: str) -> None:
    with pytest.raises(UsageError, match="accounts.key") as raised:
        cipher(keys)
    assert keys not in str(raised.value)


def test_mask_shows_little() -> None:
    assert mask(KEY_ID) == "AKLI****01" and mask("short") == "****"


BROKER_ACCOUNT = "6f2c9b1e-3a4d-4e5f-8a7b-1c2d3e4f5a6b"


def test_a_broker_account_needs_no_key_and_is_replaced_like_any_row(database: str, store: LinkedAccountStore) -> None:
    keyless = LinkedAccountStore(database, "")
    try:
        record = keyless.link("user-1", "broker", BROKER_ACCOUNT.upper(), "", paper=False)
        assert (record.kind, record.key_id, record.revision) == ("broker", BROKER_ACCOUNT, 1)
        assert keyless.list() == [record] and keyless.status(record) == "ok"
        with pytest.raises(UsageError, match="a UUID"):
            keyless.link("user-2", "broker", "not-an-id", "", paper=True)
    finally:
        keyless.close()
    relinked = store.link("user-1", "keys", KEY_ID, SECRET, paper=True)  # a broker row re-linked with keys
    assert (relinked.kind, relinked.revision) == ("keys", 2) and store.secret(relinked).value == SECRET
    store.link("user-3", "broker", BROKER_ACCOUNT, "", paper=True)
    assert store.rotate() == (1, 0)  # the broker row has nothing to re-encrypt
