"""Password hashing: argon2id through argon2-cffi, and login checks that don't reveal which
usernames exist.

Production uses argon2-cffi's default parameters (RFC 9106 low-memory profile); tests pass a cheaper
``argon2.PasswordHasher`` (e.g. ``PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import UsageError

# The stored hash of a user without a password (``UserStoreBase.add_async(..., None)``): no argon2
# hash, so no password ever verifies; checked as an unknown user's, with the same work.
NO_PASSWORD = "!"


def default_hasher() -> PasswordHasher:
    """The hasher used when none is given: argon2id with the library's default parameters."""
    return PasswordHasher()


@dataclass(frozen=True)
class Verification:
    """The outcome of a password check. ``new_hash`` is set when the password matched but the stored
    hash uses outdated parameters: the caller must store ``new_hash`` in place of the old one."""

    ok: bool
    new_hash: str | None = None


class Passwords:
    """Hashes and verifies passwords with one argon2id hasher."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        hasher = hasher if hasher is not None else default_hasher()
        if hasher.type is not Type.ID:
            raise UsageError(f"password hasher must use argon2id, not {hasher.type.name}")
        self._hasher = hasher
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> Verification:
        """Check ``password`` against ``stored_hash``; ``None`` means "no such user".

        An unknown user costs the same argon2 work as a known one, so response time doesn't tell
        an attacker which usernames exist.
        """
        # The dummy is made on the first check of any kind, so even the first call doesn't differ.
        dummy = self._dummy()
        if not isinstance(password, str):
            stored_hash, password = None, ""
        if stored_hash is None or stored_hash == NO_PASSWORD:  # no such user, or one who can't log in
            self._check(dummy, password)
            return Verification(ok=False)
        if not self._check(stored_hash, password):
            return Verification(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verification(ok=True, new_hash=self._hasher.hash(password))
        return Verification(ok=True)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
