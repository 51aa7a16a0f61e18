"""API keys for server-to-server calls (``/api/v1/...``): issued by ``portfolio-ws keys``, kept in
the ``api_keys`` table of ``auth.database``, beside the users: the SQLite file (here) or PostgreSQL
(``apikeys_postgres``; ``stores.open_key_store`` picks), behind one contract (``ApiKeyStoreBase``; the tests in
tests/unit/portfolio_ws/auth/test_apikeys.py run both). Every request reads its key's row, so a key
added or revoked from the command line counts from the next request, on every node, no restart.

A key is ``pws_<key id>_<secret>``: the id (12 hex digits) finds the row, the secret (32 random
bytes, URL-safe base64) proves it. Only the secret's SHA-256 digest is stored. A salted slow hash
(argon2, as for passwords) protects guessable secrets; these have 256 random bits, so a digest leaked
with the database still can't be reversed or brute-forced, and checking one costs microseconds on
every request instead of a bounded hashing queue. Digests are compared with ``hmac.compare_digest``.
The key itself is shown once, when added, and never stored, logged or returned again.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UsageError
from .database import SQLiteTables, Tables

# publish: POST /api/v1/publish. admin: the users over the API (POST /api/v1/users, DELETE
# /api/v1/users/{userId}). read: nothing yet - the scope of read-only server calls to come (kept so
# a key can be limited to them now; a read key is refused the others, 403).
SCOPES = ("publish", "admin", "read")
NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_KEY_RE = re.compile(r"pws_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    scopes     TEXT NOT NULL,
    digest     TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: float


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyStoreBase(Tables):
    """What every key store does; subclasses supply the SQL plumbing (``%s`` placeholders,
    ``NAME_MATCH`` for the case-insensitive name). Blocking methods are for the command line and
    tests; the server checks keys with ``verify_async``, which doesn't block the loop on a network."""

    NAME_MATCH = "name = %s"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def add(self, name: str, scopes: builtins.list[str]) -> tuple[ApiKey, str]:
        """A new key named ``name``: (its record, the key to hand over once)."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise UsageError(f"invalid key name {name!r}: use 1-64 letters, digits, '_', '.', '@' and '-'")
        unknown = [s for s in scopes if s not in SCOPES]
        if not scopes or unknown:
            raise UsageError(f"unknown scope {', '.join(unknown) or '(none)'}: use one of {', '.join(SCOPES)}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        record = ApiKey(key_id, name, frozenset(scopes), self._clock())
        try:
            self._execute("INSERT INTO api_keys (key_id, name, scopes, digest, created_at) VALUES (%s, %s, %s, %s, %s)",
                          (key_id, name, " ".join(sorted(scopes)), _digest(secret), record.created_at))
        except self.DUPLICATE:
            raise UsageError(f"a key named {name!r} exists: revoke it first or choose another name") from None
        return record, f"pws_{key_id}_{secret}"

    def list(self) -> builtins.list[ApiKey]:
        rows = self._fetchall("SELECT key_id, name, scopes, created_at FROM api_keys ORDER BY created_at, name")
        return [_record(r) for r in rows]

    def revoke(self, name: str) -> bool:
        """Delete the key named ``name``; False when there is none. Takes effect on the next request."""
        return self._execute(f"DELETE FROM api_keys WHERE {self.NAME_MATCH}", (name,)) > 0

    def verify(self, key: str) -> ApiKey | None:
        """The key's record when ``key`` is a valid, unrevoked key; else None."""
        match = _KEY_RE.fullmatch(key)
        if match is None:
            return None
        return _checked(self._fetchall(_VERIFY_SQL, (match.group(1),)), match.group(2))

    async def verify_async(self, key: str) -> ApiKey | None:
        """``verify`` for the server's request path."""
        match = _KEY_RE.fullmatch(key)
        if match is None:
            return None
        return _checked(await self._afetchall(_VERIFY_SQL, (match.group(1),)), match.group(2))


_VERIFY_SQL = "SELECT key_id, name, scopes, created_at, digest FROM api_keys WHERE key_id = %s"


def _record(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(row[0], row[1], frozenset(row[2].split()), float(row[3]))


def _checked(rows: builtins.list[tuple[Any, ...]], secret: str) -> ApiKey | None:
    if not rows or not hmac.compare_digest(rows[0][4], _digest(secret)):
        return None
    return _record(rows[0])


class ApiKeyStore(SQLiteTables, ApiKeyStoreBase):
    """The keys in one SQLite database (the users' file)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        ApiKeyStoreBase.__init__(self, clock)
        self._open(path, _SCHEMA)

