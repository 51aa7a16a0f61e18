"""argon2id hashing, rehash on outdated parameters, and equal work for unknown users."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type, profiles

from portfolio_ws.auth.passwords import Passwords, default_hasher
from portfolio_ws.errors import UsageError


class CountingHasher(PasswordHasher):
    """Counts argon2 verifications: the work a login costs."""

    verifications = 0

    def verify(self, hash, password):  # type: ignore[no-untyped-def]
        self.verifications += 1
        return super().verify(hash, password)


def counting_hasher() -> CountingHasher:
    p = profiles.CHEAPEST
    return CountingHasher(p.time_cost, p.memory_cost, p.parallelism, p.hash_len, p.salt_len)


def test_default_is_argon2id_with_library_defaults():
    hasher = default_hasher()
    assert hasher.type is Type.ID
    assert Passwords().hash("correct horse").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_other_argon2_types_are_refused():
    with pytest.raises(UsageError):
        Passwords(PasswordHasher(type=Type.I))


def test_verify(cheap_hasher):
    passwords = Passwords(cheap_hasher)
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse").ok
    assert passwords.verify(stored, "correct horse").new_hash is None
    assert not passwords.verify(stored, "wrong horse").ok
    assert not passwords.verify("not a hash", "correct horse").ok
    assert not passwords.verify(stored, None).ok  # type: ignore[arg-type]


def test_unknown_user_costs_one_verification_like_a_known_one():
    hasher = counting_hasher()
    passwords = Passwords(hasher)
    stored = passwords.hash("correct horse")
    passwords.verify(stored, "wrong horse")
    known = hasher.verifications
    passwords.verify(None, "wrong horse")
    assert hasher.verifications - known == known == 1


def test_outdated_parameters_produce_a_new_hash(cheap_hasher):
    old = Passwords(cheap_hasher).hash("correct horse")
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    result = Passwords(stronger).verify(old, "correct horse")
    assert result.ok and result.new_hash is not None
    assert "m=16,t=2,p=1" in result.new_hash
    assert not Passwords(stronger).verify(old, "wrong horse").ok
