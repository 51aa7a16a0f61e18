"""Fixtures for the auth tests: a cheap argon2id hasher so the suite stays fast."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles


@pytest.fixture
def cheap_hasher() -> PasswordHasher:
    return PasswordHasher.from_parameters(profiles.CHEAPEST)
