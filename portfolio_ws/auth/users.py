"""The user accounts: usernames, argon2id password hashes and the admin flag, in SQLite.

Rules kept here:
- a username is 1-64 characters of ``[A-Za-z0-9_.@-]``, unique without regard to case;
- a password is 8 to 1024 characters (the cap keeps one login from costing unbounded hashing);
- a user's ``user_id`` (``user-`` + 12 hex digits) never changes and is what sessions and events
  refer to; the username is only for logging in.
"""

from __future__ import annotations

import asyncio
import builtins
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable

from argon2 import PasswordHasher

from ..errors import UsageError
from .database import open_database
from .passwords import Passwords, Verification

USERNAME_MAX = 64
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
_USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,%d}" % USERNAME_MAX)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id       TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL
)
"""
_COLUMNS = "user_id, username, is_admin, created_at"


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    is_admin: bool
    created_at: float  # epoch seconds


def validate_username(username: str) -> None:
    """Raise ``UsageError`` saying what is wrong with ``username``, if anything."""
    if not isinstance(username, str) or not _USERNAME_RE.fullmatch(username):
        raise UsageError(
            f"invalid username {username!r}: use 1-{USERNAME_MAX} characters among "
            "letters, digits, '_', '.', '@' and '-'"
        )


def validate_password(password: str) -> None:
    """Raise ``UsageError`` if ``password`` is too short or too long (never quoting it)."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise UsageError(f"password too short: use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UsageError(f"password too long: use at most {PASSWORD_MAX} characters")


class UserStore:
    """The users table of the SQLite file at ``database`` (``":memory:"`` for tests).

    One connection per store; use it from one thread (the IOLoop's). ``hasher`` defaults to
    argon2id with the library's default parameters; ``clock`` stamps ``created_at``.
    """

    def __init__(
        self,
        database: str,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._passwords = Passwords(hasher)
        self._clock = clock
        self._conn = open_database(database)
        self._conn.execute(_SCHEMA)

    def add(self, username: str, password: str, admin: bool = False) -> User:
        """Create a user. Raises ``UsageError`` for a bad username or password, or a taken name."""
        validate_username(username)
        validate_password(password)
        user = User(
            user_id="user-" + secrets.token_hex(6),
            username=username,
            is_admin=bool(admin),
            created_at=self._clock(),
        )
        password_hash = self._passwords.hash(password)
        try:
            self._conn.execute(
                "INSERT INTO users (user_id, username, password_hash, is_admin, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (user.user_id, user.username, password_hash, int(user.is_admin), user.created_at),
            )
        except sqlite3.IntegrityError:
            if self.by_username(username) is not None:
                raise UsageError(f"user {username!r} already exists") from None
            raise  # a user_id collision: 48 random bits, not worth a retry loop
        return user

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else ``None`` (unknown user or wrong password alike).

        Runs argon2 on the calling thread (tens of milliseconds with default parameters); a server
        should prefer ``authenticate_async``.
        """
        user, stored_hash = self._login_row(username)
        return self._finish_login(user, stored_hash, self._passwords.verify(stored_hash, password))

    async def authenticate_async(self, username: str, password: str) -> User | None:
        """``authenticate`` with the argon2 work on the event loop's default executor, so the loop
        keeps serving while a login is checked. Database access stays on the loop's thread."""
        user, stored_hash = self._login_row(username)
        loop = asyncio.get_running_loop()
        verification = await loop.run_in_executor(None, self._passwords.verify, stored_hash, password)
        return self._finish_login(user, stored_hash, verification)

    def get(self, user_id: str) -> User | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM users WHERE user_id = ?", (user_id,)
        ).fetchone()
        return _user(row) if row else None

    def by_username(self, username: str) -> User | None:
        """The user called ``username`` (case-insensitively), or ``None``."""
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,)
        ).fetchone()
        return _user(row) if row else None

    def remove(self, username: str) -> bool:
        """Delete the user; ``False`` if there was none. Their sessions are the caller's to end
        (``SessionStore.delete_for_user``)."""
        cursor = self._conn.execute("DELETE FROM users WHERE username = ?", (username,))
        return cursor.rowcount > 0

    def close(self) -> None:
        self._conn.close()

    def list(self) -> builtins.list[User]:
        """Every user, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM users ORDER BY created_at, username"
        ).fetchall()
        return [_user(row) for row in rows]

    def _login_row(self, username: str) -> tuple[User | None, str | None]:
        if not isinstance(username, str):
            return None, None
        row = self._conn.execute(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = ?", (username,)
        ).fetchone()
        if row is None:
            return None, None
        return _user(row[:4]), row[4]

    def _finish_login(
        self, user: User | None, old_hash: str | None, verification: Verification
    ) -> User | None:
        if user is None or not verification.ok:
            return None
        if verification.new_hash is not None:
            # Conditional, so a password changed while we hashed is not overwritten.
            self._conn.execute(
                "UPDATE users SET password_hash = ? WHERE user_id = ? AND password_hash = ?",
                (verification.new_hash, user.user_id, old_hash),
            )
        return user


def _user(row: tuple[str, str, int, float]) -> User:
    return User(user_id=row[0], username=row[1], is_admin=bool(row[2]), created_at=float(row[3]))
