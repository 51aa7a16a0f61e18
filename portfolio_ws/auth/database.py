"""Opening the embedded SQLite database that holds users and (in single-node mode) sessions.

Each store opens its own connection to the same file; each creates its own tables.
"""

from __future__ import annotations

import os
import sqlite3

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


def _create_private(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise UsageError(f"cannot create database {path!r}: {exc.strerror}") from None
    os.close(fd)
