"""Linked broker accounts: a user's Alpaca credentials kept in ``auth.database`` (SQLite or
PostgreSQL, the users' database), written by ``portfolio-ws accounts link`` and read by a running
Alpaca feed (feeds/alpaca/linked.py), which starts and stops streams as rows come and go.

Secrets (an API key's secret, or an OAuth access token) are stored encrypted with Fernet
(AES-128-CBC + HMAC-SHA256, ``cryptography``) under ``accounts.key`` (set it through
PORTFOLIO_WS_ACCOUNTS_KEY, never in a file): one key, or several separated by commas, the newest
first (``MultiFernet``: encrypts with the first, decrypts with any). ``rotate`` re-encrypts every row
with the first key; then the old keys can be dropped. The secret is never logged, listed or returned
by an API: ``LinkedAccount`` holds only what may be shown; ``credentials`` decrypts for the feed.

One row per user (``user_id``): linking again replaces the row and bumps ``revision``, which is how
the feed tells a changed account from an unchanged one (a rotation keeps the revision).
"""

from __future__ import annotations

import builtins
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..errors import UsageError

KEY_ENV = "PORTFOLIO_WS_ACCOUNTS_KEY"
# An API key id + secret, an OAuth access token (Alpaca Connect), or an account of a broker partner
# (Broker API: ``key_id`` is its account id; the broker key is the feed's, so nothing is secret).
KINDS = ("keys", "oauth", "broker")
BROKER = "broker"
SECRET_MAX = 4096

_SCHEMA_SQLITE = """
CREATE TABLE IF NOT EXISTS linked_accounts (
    user_id    TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    paper      INTEGER NOT NULL,
    revision   INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""
_SCHEMA_POSTGRES = _SCHEMA_SQLITE.replace("REAL", "DOUBLE PRECISION")
_COLUMNS = "user_id, kind, key_id, paper, revision, created_at"


class MissingKey(UsageError):
    """``accounts.key`` is not set: secrets can be neither stored nor read."""

    def __init__(self) -> None:
        super().__init__(f"accounts.key is not set: set {KEY_ENV} (make one with: portfolio-ws accounts new-key)")


def new_key() -> str:
    return Fernet.generate_key().decode()


def cipher(keys: str) -> MultiFernet:
    """The MultiFernet of ``accounts.key`` (comma-separated, newest first). ``MissingKey`` when
    empty; ``UsageError`` (never quoting the value) when a key is not a Fernet key."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise MissingKey()
    try:
        return MultiFernet([Fernet(k) for k in parts])
    except (ValueError, TypeError):
        raise UsageError("accounts.key: each key must be 32 url-safe base64-encoded bytes "
                         "(make one with: portfolio-ws accounts new-key)") from None


def check_key(keys: str) -> str | None:
    """Settings rule of ``accounts.key``: None when empty or valid, else what it must be."""
    try:
        cipher(keys)
    except MissingKey:
        return None
    except UsageError:
        return "be Fernet keys (32 url-safe base64 bytes each), comma-separated, newest first"
    return None


def mask(key_id: str) -> str:
    """A key id as ``accounts list`` shows it: enough to recognise, not to use."""
    return f"{key_id[:4]}****{key_id[-2:]}" if len(key_id) >= 10 else "****"


@dataclass(frozen=True)
class LinkedAccount:
    """What may be shown of a linked account (never its secret)."""

    user_id: str
    kind: str
    key_id: str
    paper: bool
    revision: int
    created_at: float

    def __repr__(self) -> str:
        return f"LinkedAccount(user_id={self.user_id!r}, kind={self.kind!r}, revision={self.revision})"


@dataclass(frozen=True)
class Secret:
    """A decrypted credential, for the feed only; its repr shows nothing."""

    key_id: str
    value: str

    def __repr__(self) -> str:
        return "Secret(***)"


def unlink_user(database: str, user_id: str) -> bool:
    """Remove ``user_id``'s linked account, if any (a removed user's broker account goes with them:
    ``users remove`` and ``DELETE /api/v1/users/{userId}``); a running feed stops streaming it at
    its next poll. Blocking: call it from an executor on the loop. ``UsageError`` when the database
    can't be reached."""
    store = LinkedAccountStore(database)
    try:
        return store.unlink(user_id)
    finally:
        store.close()


class LinkedAccountStore:
    """The ``linked_accounts`` table of ``auth.database``. ``keys`` is ``accounts.key`` (may be
    empty: listing and unlinking work without it; linking, reading secrets and rotating do not)."""

    def __init__(self, database: str, keys: str = "", clock: Callable[[], float] = time.time) -> None:
        from .postgres import is_postgres

        self._keys = keys
        self._clock = clock
        self._database = database
        self._postgres = is_postgres(database)
        self._conn: Any = None
        self.reopen()

    def reopen(self) -> None:
        """(Re)connect, creating the table if needed: after PostgreSQL restarted, the next reading
        works again. Raises ``UsageError`` naming the database when it can't be reached."""
        from .postgres import connect

        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # a broken connection may fail to close: it is replaced anyway
                pass
        if self._postgres:
            self._conn = connect(self._database)
            self._conn.execute(_SCHEMA_POSTGRES)
        else:
            from .database import open_database

            self._conn = open_database(self._database)
            self._conn.execute(_SCHEMA_SQLITE)

    def _sql(self, sql: str) -> str:
        return sql if self._postgres else sql.replace("%s", "?")

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self._conn.execute(self._sql(sql), params).rowcount)

    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        return list(self._conn.execute(self._sql(sql), params).fetchall())

    def link(self, user_id: str, kind: str, key_id: str, secret: str, *, paper: bool) -> LinkedAccount:
        """Link (or re-link) ``user_id``'s account; the secret is encrypted before it is written."""
        if kind not in KINDS:
            raise UsageError(f"unknown credential kind {kind!r}: use one of {', '.join(KINDS)}")
        if kind == "keys" and not key_id.strip():
            raise UsageError("the API key id is empty")
        if kind == BROKER:
            return self._link_broker(user_id, key_id.strip())
        if not secret.strip():
            raise UsageError("the secret is empty" if kind == "keys" else "the OAuth token is empty")
        if len(secret) > SECRET_MAX or len(key_id) > 256:
            raise UsageError("the key id or secret is too long")
        if any(c.isspace() for c in key_id.strip() + secret.strip()):
            raise UsageError("the key id and secret must not contain spaces")
        token = cipher(self._keys).encrypt(secret.strip().encode()).decode()
        # One statement: a running feed never sees the account missing while it is re-linked.
        rows = self._fetchall(
            "INSERT INTO linked_accounts VALUES (%s, %s, %s, %s, %s, 1, %s) ON CONFLICT (user_id) DO UPDATE SET "
            "kind = excluded.kind, key_id = excluded.key_id, secret = excluded.secret, paper = excluded.paper, "
            "revision = linked_accounts.revision + 1 RETURNING revision, created_at",
            (user_id, kind, key_id.strip(), token, int(paper), self._clock()))
        revision, created = int(rows[0][0]), float(rows[0][1])
        return LinkedAccount(user_id, kind, key_id.strip(), paper, revision, created)

    def _link_broker(self, user_id: str, account_id: str) -> LinkedAccount:
        try:
            account_id = str(uuid.UUID(account_id))
        except ValueError:
            raise UsageError("the broker account id must be the account's Broker API id (a UUID)") from None
        rows = self._fetchall(
            "INSERT INTO linked_accounts VALUES (%s, %s, %s, '', 1, 1, %s) ON CONFLICT (user_id) DO UPDATE SET "
            "kind = excluded.kind, key_id = excluded.key_id, secret = '', paper = 1, "
            "revision = linked_accounts.revision + 1 RETURNING revision, created_at",
            (user_id, BROKER, account_id, self._clock()))
        return LinkedAccount(user_id, BROKER, account_id, True, int(rows[0][0]), float(rows[0][1]))

    def list(self) -> builtins.list[LinkedAccount]:
        rows = self._fetchall(f"SELECT {_COLUMNS} FROM linked_accounts ORDER BY created_at, user_id")
        return [LinkedAccount(r[0], r[1], r[2], bool(r[3]), int(r[4]), float(r[5])) for r in rows]

    def unlink(self, user_id: str) -> bool:
        return self._execute("DELETE FROM linked_accounts WHERE user_id = %s", (user_id,)) > 0

    def secret(self, account: LinkedAccount) -> Secret:
        """The decrypted credential of ``account``. ``MissingKey`` without ``accounts.key``;
        ``UsageError`` when no key of ``accounts.key`` decrypts it (or the row is gone)."""
        fernet = cipher(self._keys)
        rows = self._fetchall("SELECT secret FROM linked_accounts WHERE user_id = %s", (account.user_id,))
        if not rows:
            raise UsageError(f"{account.user_id} is no longer linked")
        try:
            return Secret(account.key_id, fernet.decrypt(rows[0][0].encode()).decode())
        except InvalidToken:
            raise UsageError("cannot decrypt: no key in accounts.key is the one it was encrypted with") from None

    def status(self, account: LinkedAccount) -> str:
        """``ok``, or why the feed could not use it (for ``accounts list``)."""
        if account.kind == BROKER:  # nothing encrypted to check
            return "ok"
        try:
            self.secret(account)
        except MissingKey:
            return "key not set"
        except UsageError as exc:
            return str(exc).split(":")[0]
        return "ok"

    def rotate(self) -> tuple[int, int]:
        """Re-encrypt every secret with the first key of ``accounts.key``: (rotated, undecryptable)."""
        fernet = cipher(self._keys)
        done = failed = 0
        for user_id, token in self._fetchall("SELECT user_id, secret FROM linked_accounts WHERE kind <> %s", (BROKER,)):
            try:
                fresh = fernet.rotate(token.encode()).decode()
            except InvalidToken:
                failed += 1
                continue
            done += self._execute("UPDATE linked_accounts SET secret = %s WHERE user_id = %s AND secret = %s",
                                  (fresh, user_id, token))
        return done, failed

    def close(self) -> None:
        self._conn.close()
