"""Fixtures for the auth tests: a cheap argon2id hasher so the suite stays fast, and ``database``:
the stores' contract tests run once on SQLite and once on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles

from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401  (a fixture)


@pytest.fixture
def cheap_hasher() -> PasswordHasher:
    return PasswordHasher.from_parameters(profiles.CHEAPEST)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``auth.database`` for one test: a SQLite file, or a fresh database on the test PostgreSQL."""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.fresh_database()
    return str(tmp_path / "auth.sqlite3")
