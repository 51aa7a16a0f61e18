"""The reconnect policy: close codes, full-jitter backoff, the longer 1013 delay, polling, staleness."""

from __future__ import annotations

import pytest

from portfolio_ws import constants as c
from portfolio_ws.client import policy
from portfolio_ws.client.policy import Timings

T = Timings()


@pytest.mark.parametrize("code", [1000, 1008, 1009])
def test_no_reconnect_after_normal_closure_policy_violation_or_too_big(code):
    assert not policy.should_reconnect(code)


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1013, 1012, 4000])
def test_reconnect_after_everything_else(code):
    assert policy.should_reconnect(code)


def test_backoff_is_full_jitter_doubling_from_1s_capped_at_30s():
    assert [policy.backoff(n, T, lambda: 1.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.backoff(3, T, lambda: 0.25) == 2.0
    assert policy.backoff(0, T, lambda: 0.0) == 0.0
    assert policy.backoff(10_000, T, lambda: 1.0) == 30  # no overflow


def test_1013_waits_longer_than_the_same_backoff():
    for attempt in range(6):
        base = policy.reconnect_delay(c.GOING_AWAY, attempt, T, lambda: 0.5)
        assert policy.reconnect_delay(c.TRY_AGAIN_LATER, attempt, T, lambda: 0.5) == base + T.try_again_later
        assert policy.reconnect_delay(c.INTERNAL_ERROR, attempt, T, lambda: 0.5) == base


def test_polling_starts_when_streaming_is_disabled_or_after_10_failures():
    assert policy.starts_polling(c.STREAMING_DISABLED, 1, T)
    assert not policy.starts_polling(c.SERVER_CAPACITY, 9, T)
    assert policy.starts_polling(c.SERVER_CAPACITY, 10, T)


def test_staleness_live_under_5s_delayed_to_30s_stale_beyond():
    assert policy.staleness(None, T) == "stale"
    assert policy.staleness(0.0, T) == "live"
    assert policy.staleness(4.99, T) == "live"
    assert policy.staleness(5.0, T) == "delayed"
    assert policy.staleness(30.0, T) == "delayed"
    assert policy.staleness(30.01, T) == "stale"
