"""Opening the embedded SQLite database that holds users and (in single-node mode) sessions.

Each store opens its own connection to the same file; each creates its own tables.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
from abc import ABC, abstractmethod
from typing import Any

from ..errors import UsageError

MEMORY = ":memory:"


def open_database(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the SQLite file at ``path``, in WAL mode and autocommit.

    A new file is created readable by its owner only: it holds password hashes. Raises
    ``UsageError`` naming the path when it cannot be opened.
    """
    if path != MEMORY:
        _create_private(path)
    try:
        # isolation_level=None: autocommit; every statement we issue is atomic on its own.
        # timeout: wait briefly when the CLI and the server write at the same moment.
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open database {path!r}: {exc}") from None
    return conn


class Tables(ABC):
    """The SQL plumbing a store of rows (users, API keys) sits on, in SQLite or PostgreSQL: SQL with
    ``%s`` placeholders, ``DUPLICATE`` the driver's unique-violation errors. The ``_a*`` forms are
    the ones the server awaits; for a local file they just run (it doesn't block for long)."""

    DUPLICATE: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run a statement; returns the rows it touched."""

    @abstractmethod
    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        """Rows of a query."""

    async def _afetchall(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        return self._fetchall(sql, params)

    async def _aexecute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._execute(sql, params)

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s)."""

    async def aclose(self) -> None:
        self.close()


class SQLiteTables(Tables):
    """``Tables`` in one SQLite file (one connection, used from the IOLoop's thread)."""

    DUPLICATE = (sqlite3.IntegrityError,)
    _conn: sqlite3.Connection

    def _open(self, path: str, schema: str) -> None:
        self._conn = open_database(path)
        self._conn.execute(schema)

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._conn.execute(sql.replace("%s", "?"), params).rowcount

    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> builtins.list[tuple[Any, ...]]:
        return self._conn.execute(sql.replace("%s", "?"), params).fetchall()

    def close(self) -> None:
        self._conn.close()


def _create_private(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise UsageError(f"cannot create database {path!r}: {exc.strerror}") from None
    os.close(fd)
