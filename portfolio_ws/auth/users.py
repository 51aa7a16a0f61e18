"""The user accounts: usernames, argon2id password hashes and the admin flag, in SQLite (here) or
PostgreSQL (``users_postgres``), behind one contract (``UserStoreBase``).

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
import time
from dataclasses import dataclass
from typing import Any, Callable

from argon2 import PasswordHasher

from ..errors import UsageError
from .database import SQLiteTables, Tables
from .hashqueue import HashQueue
from .passwords import NO_PASSWORD, Passwords, Verification

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
    if not isinstance(username, str):  # from JSON: a number, list, object or null
        raise UsageError("username must be a string")
    if not _USERNAME_RE.fullmatch(username):
        raise UsageError(
            f"invalid username {username!r}: use 1-{USERNAME_MAX} characters among "
            "letters, digits, '_', '.', '@' and '-'"
        )


def validate_password(password: str) -> None:
    """Raise ``UsageError`` if ``password`` is not a string, too short or too long (never quoting it)."""
    if not isinstance(password, str):  # from JSON: a number, list, object or null
        raise UsageError("password must be a string")
    if len(password) < PASSWORD_MIN:
        raise UsageError(f"password too short: use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UsageError(f"password too long: use at most {PASSWORD_MAX} characters")


class UserStoreBase(Tables):
    """What every user store does (SQLite here, PostgreSQL in ``users_postgres``; the contract
    tests in tests/unit/portfolio_ws/auth/test_users.py run both). Subclasses supply the SQL plumbing; statements are
    written with ``%s`` placeholders and ``NAME_MATCH`` for the case-insensitive username match.

    Blocking methods are for the command line, start-up and tests; the server's request path uses
    the ``*_async`` ones, which for a networked database don't block the IOLoop."""

    NAME_MATCH = "username = %s"

    def __init__(self, *, hasher: PasswordHasher | None = None, clock: Callable[[], float] = time.time) -> None:
        self._passwords = Passwords(hasher)
        self._clock = clock

    # ---- the contract ----------------------------------------------------------------------------
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
            self._execute(
                "INSERT INTO users (user_id, username, password_hash, is_admin, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (user.user_id, user.username, password_hash, int(user.is_admin), user.created_at),
            )
        except self.DUPLICATE:
            if self.by_username(username) is not None:
                raise UsageError(f"user {username!r} already exists") from None
            raise  # a user_id collision: 48 random bits, not worth a retry loop
        return user

    async def add_async(self, username: str, password: str | None, queue: HashQueue | None = None) -> User:
        """``add`` for the server (``POST /api/v1/users``): the argon2 work off the loop's thread
        (on ``queue`` when given), the insert without blocking it. ``password`` None: a user only the
        platform's own sessions or API stand for, who can't log in here (``NO_PASSWORD``)."""
        validate_username(username)
        if password is None:
            password_hash = NO_PASSWORD
        else:
            validate_password(password)
            if queue is not None:
                password_hash = await queue.run(self._passwords.hash, password)
            else:
                password_hash = await asyncio.get_running_loop().run_in_executor(None, self._passwords.hash, password)
        user = User(user_id="user-" + secrets.token_hex(6), username=username, is_admin=False,
                    created_at=self._clock())
        try:
            await self._aexecute(
                "INSERT INTO users (user_id, username, password_hash, is_admin, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (user.user_id, user.username, password_hash, 0, user.created_at),
            )
        except self.DUPLICATE:
            raise UsageError(f"user {username!r} already exists") from None
        return user

    async def by_username_async(self, username: str) -> User | None:
        rows = await self._afetchall(f"SELECT {_COLUMNS} FROM users WHERE {self.NAME_MATCH}", (username,))
        return _user(rows[0]) if rows else None

    async def remove_async(self, user_id: str) -> bool:
        """Delete the user ``user_id``; ``False`` if there was none (sessions: the caller's)."""
        return await self._aexecute("DELETE FROM users WHERE user_id = %s", (user_id,)) > 0

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else ``None`` (unknown user or wrong password alike).

        Runs argon2 on the calling thread (tens of milliseconds with default parameters); a server
        should prefer ``authenticate_async``.
        """
        if not isinstance(username, str):
            return None
        user, stored_hash = _login_row(self._fetchall(_LOGIN_SQL % self.NAME_MATCH, (username,)))
        verification = self._passwords.verify(stored_hash, password)
        update = self._after_login(user, stored_hash, verification)
        if update is not None:
            self._execute(*update)
        return user if user is not None and verification.ok else None

    async def authenticate_async(self, username: str, password: str, queue: HashQueue | None = None) -> User | None:
        """``authenticate`` with the argon2 work off the event loop's thread, so the loop keeps
        serving while a login is checked: on ``queue`` (bounded; raises ``HashQueueFull``), else the
        loop's default executor."""
        if not isinstance(username, str):
            return None
        user, stored_hash = _login_row(await self._afetchall(_LOGIN_SQL % self.NAME_MATCH, (username,)))
        if queue is not None:
            verification = await queue.run(self._passwords.verify, stored_hash, password)
        else:
            loop = asyncio.get_running_loop()
            verification = await loop.run_in_executor(None, self._passwords.verify, stored_hash, password)
        update = self._after_login(user, stored_hash, verification)
        if update is not None:
            await self._aexecute(*update)
        return user if user is not None and verification.ok else None

    def get(self, user_id: str) -> User | None:
        rows = self._fetchall(f"SELECT {_COLUMNS} FROM users WHERE user_id = %s", (user_id,))
        return _user(rows[0]) if rows else None

    async def get_async(self, user_id: str) -> User | None:
        rows = await self._afetchall(f"SELECT {_COLUMNS} FROM users WHERE user_id = %s", (user_id,))
        return _user(rows[0]) if rows else None

    def by_username(self, username: str) -> User | None:
        """The user called ``username`` (case-insensitively), or ``None``."""
        rows = self._fetchall(f"SELECT {_COLUMNS} FROM users WHERE {self.NAME_MATCH}", (username,))
        return _user(rows[0]) if rows else None

    def remove(self, username: str) -> bool:
        """Delete the user; ``False`` if there was none. Their sessions are the caller's to end
        (``SessionStore.delete_for_user``)."""
        return self._execute(f"DELETE FROM users WHERE {self.NAME_MATCH}", (username,)) > 0

    def list(self) -> builtins.list[User]:
        """Every user, oldest first."""
        return [_user(row) for row in self._fetchall(f"SELECT {_COLUMNS} FROM users ORDER BY created_at, username")]

    async def user_ids_async(self) -> builtins.list[str]:
        """Every user's id, oldest first (the simulator's poll for users added while it runs)."""
        return [row[0] for row in await self._afetchall("SELECT user_id FROM users ORDER BY created_at, username")]

    def _after_login(self, user: User | None, old_hash: str | None,
                     verification: Verification) -> tuple[str, tuple[Any, ...]] | None:
        """The statement that re-hashes a password checked with outdated parameters, if needed."""
        if user is None or not verification.ok or verification.new_hash is None:
            return None
        # Conditional, so a password changed while we hashed is not overwritten.
        return ("UPDATE users SET password_hash = %s WHERE user_id = %s AND password_hash = %s",
                (verification.new_hash, user.user_id, old_hash))


class UserStore(SQLiteTables, UserStoreBase):
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
        UserStoreBase.__init__(self, hasher=hasher, clock=clock)
        self._open(database, _SCHEMA)


def open_user_store(database: str, *, hasher: PasswordHasher | None = None,
                    clock: Callable[[], float] = time.time) -> UserStoreBase:
    """The store ``auth.database`` names: PostgreSQL for a ``postgresql://`` URL, else a SQLite file."""
    from .postgres import is_postgres

    if is_postgres(database):
        from .users_postgres import PostgresUserStore

        return PostgresUserStore(database, hasher=hasher, clock=clock)
    return UserStore(database, hasher=hasher, clock=clock)


_LOGIN_SQL = f"SELECT {_COLUMNS}, password_hash FROM users WHERE %s"


def _login_row(rows: builtins.list[tuple[Any, ...]]) -> tuple[User | None, str | None]:
    if not rows:
        return None, None
    return _user(rows[0][:4]), rows[0][4]


def _user(row: tuple[Any, ...]) -> User:
    return User(user_id=row[0], username=row[1], is_admin=bool(row[2]), created_at=float(row[3]))
