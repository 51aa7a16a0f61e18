"""Which database store ``auth.database`` names: a ``postgresql://`` URL is PostgreSQL (shared by
nodes on any host), anything else a SQLite file (one host). The one place that decides it."""

from __future__ import annotations

import time
from typing import Callable

from ..settings import AuthSettings
from .apikeys import ApiKeyStore, ApiKeyStoreBase
from .postgres import is_postgres
from .sessions import SessionLifetime, SessionStore
from .users import open_user_store

__all__ = ["open_key_store", "open_session_store", "open_user_store", "is_postgres"]


async def open_session_store(auth: AuthSettings) -> SessionStore:
    """The sessions table in ``auth.database``, ready for use. Raises ``UsageError`` naming the
    setting when it can't be opened."""
    lifetime = SessionLifetime.from_settings(auth)
    if is_postgres(auth.database):
        from .sessions.postgres import PostgresSessionStore

        return await PostgresSessionStore.connect(auth.database, lifetime)
    from .sessions.sqlite import SQLiteSessionStore

    return SQLiteSessionStore(auth.database, lifetime)


def open_key_store(database: str, clock: Callable[[], float] = time.time) -> ApiKeyStoreBase:
    """The API keys' table in ``auth.database``, beside the users."""
    if is_postgres(database):
        from .apikeys_postgres import PostgresApiKeyStore

        return PostgresApiKeyStore(database, clock)
    return ApiKeyStore(database, clock)
