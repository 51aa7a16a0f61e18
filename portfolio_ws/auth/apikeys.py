"""API keys for server-to-server calls (``POST /api/v1/publish``): issued by ``portfolio-ws keys``,
kept in the ``api_keys`` table of ``auth.database`` (the SQLite file of the users).

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
from typing import Callable

from ..errors import UsageError
from .database import open_database

# publish: POST /api/v1/publish. read: nothing yet - the scope of read-only server calls to come
# (kept so a key can be limited to them now; a read key is refused publishing, 403).
SCOPES = ("publish", "read")
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


class ApiKeyStore:
    """The keys in one SQLite database (the users' file)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        self._conn = open_database(path)
        self._conn.execute(_SCHEMA)
        self._clock = clock

    def add(self, name: str, scopes: builtins.list[str]) -> tuple[ApiKey, str]:
        """A new key named ``name``: (its record, the key to hand over once)."""
        if not NAME_RE.fullmatch(name):
            raise UsageError(f"invalid key name {name!r}: use 1-64 letters, digits, '_', '.', '@' and '-'")
        unknown = [s for s in scopes if s not in SCOPES]
        if not scopes or unknown:
            raise UsageError(f"unknown scope {', '.join(unknown) or '(none)'}: use one of {', '.join(SCOPES)}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        record = ApiKey(key_id, name, frozenset(scopes), self._clock())
        try:
            self._conn.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?)",
                               (key_id, name, " ".join(sorted(scopes)), _digest(secret), record.created_at))
        except Exception as exc:
            if "UNIQUE" in str(exc):
                raise UsageError(f"a key named {name!r} exists: revoke it first or choose another name") from None
            raise
        return record, f"pws_{key_id}_{secret}"

    def list(self) -> builtins.list[ApiKey]:
        rows = self._conn.execute("SELECT key_id, name, scopes, created_at FROM api_keys ORDER BY created_at").fetchall()
        return [ApiKey(r[0], r[1], frozenset(r[2].split()), r[3]) for r in rows]

    def revoke(self, name: str) -> bool:
        """Delete the key named ``name``; False when there is none. Takes effect on the next request."""
        return self._conn.execute("DELETE FROM api_keys WHERE name = ?", (name,)).rowcount > 0

    def verify(self, key: str) -> ApiKey | None:
        """The key's record when ``key`` is a valid, unrevoked key; else None."""
        match = _KEY_RE.fullmatch(key)
        if match is None:
            return None
        row = self._conn.execute("SELECT key_id, name, scopes, created_at, digest FROM api_keys WHERE key_id = ?",
                                 (match.group(1),)).fetchone()
        if row is None or not hmac.compare_digest(row[4], _digest(match.group(2))):
            return None
        return ApiKey(row[0], row[1], frozenset(row[2].split()), row[3])

    def close(self) -> None:
        self._conn.close()
