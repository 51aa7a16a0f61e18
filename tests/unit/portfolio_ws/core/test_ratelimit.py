"""The per-connection token bucket (100 msg/s) and the abuse rule (closed after 5 s over the limit)."""

from __future__ import annotations

from portfolio_ws.core.ratelimit import RateGuard, Verdict


def guard(now: float = 0.0) -> RateGuard:
    return RateGuard(rate=100.0, burst=100, close_after=5.0, now=now)


def storm(g: RateGuard, start: float, seconds: float, per_second: int) -> list[tuple[float, Verdict]]:
    """``per_second`` messages a second, evenly spaced; stops at the first CLOSE."""
    out = []
    for i in range(int(seconds * per_second)):
        now = start + i / per_second
        verdict = g.check(now)
        out.append((now, verdict))
        if verdict is Verdict.CLOSE:
            break
    return out


def test_a_burst_of_100_passes_then_the_101st_is_rejected_with_a_notice() -> None:
    g = guard()
    assert all(g.check(0.0) is Verdict.ALLOW for _ in range(100))
    assert g.check(0.0) is Verdict.REJECT_NOTIFY
    assert g.check(0.0) is Verdict.REJECT       # at most one notice a second
    assert g.check(0.5) is Verdict.ALLOW        # 50 tokens came back
    assert g.check(0.5) is not Verdict.CLOSE


def test_100_messages_a_second_forever_is_fine() -> None:
    verdicts = {v for _, v in storm(guard(), 0.0, 30.0, 100)}
    assert verdicts == {Verdict.ALLOW}


def test_notices_at_most_once_a_second() -> None:
    results = storm(guard(), 0.0, 4.9, 300)
    notices = [t for t, v in results if v is Verdict.REJECT_NOTIFY]
    assert notices and all(b - a >= 1.0 for a, b in zip(notices, notices[1:]))
    assert len(notices) <= 5


def test_closed_after_five_seconds_continuously_over() -> None:
    results = storm(guard(), 0.0, 10.0, 300)
    first_reject = next(t for t, v in results if v is not Verdict.ALLOW)
    closed_at, verdict = results[-1]
    assert verdict is Verdict.CLOSE
    assert 5.0 <= closed_at - first_reject < 5.1


def test_slightly_over_is_still_over() -> None:
    results = storm(guard(), 0.0, 20.0, 150)
    assert results[-1][1] is Verdict.CLOSE


def test_a_quiet_second_ends_the_streak() -> None:
    g = guard()
    results = storm(g, 0.0, 4.0, 300)     # over the limit for 4 s
    assert Verdict.CLOSE not in {v for _, v in results}
    # a quiet second: nothing sent; then back to normal traffic, then over again for 4 s
    assert g.check(5.1) is Verdict.ALLOW
    assert {v for _, v in storm(g, 5.2, 4.0, 100)} == {Verdict.ALLOW}
    again = storm(g, 9.2, 4.5, 300)
    assert Verdict.CLOSE not in {v for _, v in again}


def test_a_client_back_under_the_limit_is_served_again() -> None:
    g = guard()
    storm(g, 0.0, 3.0, 300)
    assert g.check(4.5) is Verdict.ALLOW
    assert {v for _, v in storm(g, 4.6, 10.0, 90)} == {Verdict.ALLOW}
