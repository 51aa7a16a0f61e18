"""The hub: who is connected as whom, and the per-user and total connection limits."""

from __future__ import annotations

from portfolio_ws.core.hub import Connection, Hub
from portfolio_ws.core.ratelimit import RateGuard


def conn(conn_id: int, user: str, session: str | None = None) -> Connection:
    return Connection(conn_id, f"conn-{conn_id}", user, session, 0.0, RateGuard(100.0, 100, 5.0, 0.0))


def test_per_user_limit_is_checked_first() -> None:
    hub = Hub(per_user=2, total=3)
    hub.add(conn(1, "a"))
    hub.add(conn(2, "a"))
    refusal = hub.refusal("a")
    assert refusal is not None
    assert (refusal.code, refusal.reason) == (1008, "Maximum connections exceeded (2 per user)")
    assert hub.refusal("b") is None


def test_total_limit() -> None:
    hub = Hub(per_user=5, total=2)
    hub.add(conn(1, "a"))
    hub.add(conn(2, "b"))
    refusal = hub.refusal("c")
    assert refusal is not None
    assert (refusal.code, refusal.reason) == (1013, "Server capacity reached - try again later")
    hub.remove(2)
    assert hub.refusal("c") is None


def test_remove_forgets_the_user_with_their_last_connection() -> None:
    hub = Hub(per_user=5, total=10)
    hub.add(conn(1, "a", "s1"))
    hub.add(conn(2, "a", "s2"))
    assert hub.counts_by_user() == {"a": 2}
    assert [c.id for c in hub.of_session("s2")] == [2]
    assert hub.remove(1) is not None
    assert hub.remove(1) is None
    assert hub.remove(2) is not None
    assert hub.by_user == {} and hub.counts_by_user() == {}
