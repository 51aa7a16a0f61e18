"""SessionLifetime arithmetic and the id helpers shared by every SessionStore."""

from __future__ import annotations

import pytest

from portfolio_ws.auth.sessions import SessionLifetime, new_session_id, session_digest
from portfolio_ws.errors import UsageError
from portfolio_ws.settings import AuthSettings


def test_touch_interval_defaults_to_a_tenth_of_idle_capped_at_a_minute():
    assert SessionLifetime(1800, 43200).touch_interval == 60.0
    assert SessionLifetime(100, 43200).touch_interval == 10.0
    assert SessionLifetime(100, 43200, touch_interval_seconds=0).touch_interval == 0


def test_from_settings():
    lifetime = SessionLifetime.from_settings(AuthSettings())
    assert (lifetime.idle_seconds, lifetime.absolute_seconds) == (1800.0, 43200.0)


def test_expiry_is_the_earlier_of_idle_and_absolute():
    lifetime = SessionLifetime(100, 1000)
    assert lifetime.expires_at(created_at=0, last_seen_at=50) == 150
    assert lifetime.expires_at(created_at=0, last_seen_at=950) == 1000
    assert not lifetime.is_expired(0, 50, now=149.9)
    assert lifetime.is_expired(0, 50, now=150)


@pytest.mark.parametrize("idle, absolute", [(0, 10), (10, 0), (-1, 10), (float("nan"), 10)])
def test_non_positive_lifetimes_are_refused(idle, absolute):
    with pytest.raises(UsageError):
        SessionLifetime(idle, absolute)


def test_digest_is_sha256_hex_and_differs_from_the_id():
    session_id = new_session_id()
    digest = session_digest(session_id)
    assert len(digest) == 64 and digest != session_id
    assert session_digest(session_id) == digest
