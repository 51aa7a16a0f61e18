"""The reconnect policy: the close-policy table by code and cause, full-jitter backoff, the longer 1013 delay, polling, staleness."""

from __future__ import annotations

import pytest

from portfolio_ws import constants as c
from portfolio_ws.client import policy
from portfolio_ws.client.policy import Timings

T = Timings()


def step(code, cause=None, failures=0, polling=False, attempt=0, random=0.5, retries=0):
    return policy.next_step(code, cause, failures=failures, polling=polling, attempt=attempt, timings=T,
                            random=lambda: random, retries=retries)


@pytest.mark.parametrize("code", [1000, 1008, 1009])
def test_no_reconnect_after_a_close_1000_1008_or_1009_without_a_cause(code):
    assert step(code).action == "stop"


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 4000])
def test_reconnect_after_everything_else(code):
    assert step(code) == policy.Step("reconnect", policy.backoff(0, T, lambda: 0.5))


@pytest.mark.parametrize("cause", list(c.CloseCause))
def test_each_cause_gets_its_row_of_the_table_and_the_reason_text_plays_no_part(cause):
    code, rule = c.CLOSE_CAUSES[cause]
    expected = {"stop": "stop", "reconnect": "reconnect", "poll": "poll"}[rule.action]
    assert step(code, cause.value).action == expected
    # A cause with another close code than its own (a stale cause, then a network drop): the code decides.
    assert step(1006, cause.value).action == "reconnect"


def test_the_per_user_limit_and_disabled_streaming_poll_and_retry_the_socket():
    for cause in ("CONNECTION_LIMIT", "STREAMING_DISABLED"):
        code = c.CLOSE_CAUSES[c.CloseCause(cause)][0]
        assert step(code, cause) == policy.Step("poll", 0.75)  # retry 0: 1 s jittered to 0.5-1 s
        assert step(code, cause, retries=5, random=1.0) == policy.Step("poll", T.retry_while_polling)
    assert step(1008).action == "stop"  # a 1008 with no cause is an authentication refusal


def test_an_unknown_cause_falls_back_to_the_close_code():
    assert step(1013, "SOMETHING_NEW").action == "reconnect"
    assert step(1008, "SOMETHING_NEW").action == "stop"


def test_backoff_is_full_jitter_doubling_from_1s_capped_at_30s():
    assert [policy.backoff(n, T, lambda: 1.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.backoff(3, T, lambda: 0.25) == 2.0
    assert policy.backoff(0, T, lambda: 0.0) == 0.0
    assert policy.backoff(10_000, T, lambda: 1.0) == 30  # no overflow


def test_1013_waits_longer_than_the_same_backoff():
    for attempt in range(6):
        base = step(c.GOING_AWAY, "SERVER_SHUTTING_DOWN", attempt=attempt).delay
        assert step(c.TRY_AGAIN_LATER, "SLOW_CONSUMER", attempt=attempt).delay == base + T.try_again_later
        assert step(c.TRY_AGAIN_LATER, attempt=attempt).delay == base + T.try_again_later
        assert step(c.INTERNAL_ERROR, "INTERNAL_ERROR", attempt=attempt).delay == base


def test_polling_starts_when_the_table_says_so_or_after_10_failures_and_stays_until_admitted():
    assert step(1013, "STREAMING_DISABLED", failures=1).action == "poll"
    assert step(1013, "SERVER_CAPACITY", failures=9).action == "reconnect"
    assert step(1013, "SERVER_CAPACITY", failures=10) == policy.Step("poll", 0.75)
    assert [step(1006, polling=True, retries=n, random=0.0).delay for n in range(5)] == [0.5, 1, 2, 2, 2]
    assert [step(1006, polling=True, retries=n, random=1.0).delay for n in range(5)] == [1, 2, 4, 4, 4]
    assert step(1008, "SESSION_EXPIRED", polling=True).action == "stop"


def test_staleness_live_under_5s_delayed_to_30s_stale_beyond():
    assert policy.staleness(None, T) == "stale"
    assert policy.staleness(0.0, T) == "live"
    assert policy.staleness(4.99, T) == "live"
    assert policy.staleness(5.0, T) == "delayed"
    assert policy.staleness(30.0, T) == "delayed"
    assert policy.staleness(30.01, T) == "stale"
