"""Login attempts limited per user and per address (issue 6): 429 with Retry-After, on a real socket."""

from __future__ import annotations

import ujson

from tests.harness import PASSWORD

LOGIN = "/api/auth/login"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def refused(response):
    assert response.code == 429, response.body
    assert response.headers["Content-Type"].startswith("application/json")
    assert ujson.loads(response.body) == {"error": {"code": "TOO_MANY_REQUESTS",
                                                    "message": "Too many failed logins; try again later"}}
    assert "Set-Cookie" not in response.headers
    return int(response.headers["Retry-After"])


async def test_the_eleventh_attempt_after_ten_failures_gets_429_even_with_the_right_password(make_server):
    clock = FakeClock(1_767_625_200.0)
    server = await make_server(clock=clock)
    server.add_user("alice")
    server.add_user("bob")
    for n in range(10):
        clock.now += 1
        response = await server.fetch(LOGIN, "POST", {"username": "alice", "password": f"wrong-{n}-password"})
        assert response.code == 401
    clock.now += 1
    assert refused(await server.fetch(LOGIN, "POST", {"username": "ALICE", "password": PASSWORD})) == 290
    assert (await server.fetch(LOGIN, "POST", {"username": "bob", "password": PASSWORD})).code == 200

    clock.now += 290  # the oldest failure leaves the 5-minute window: one more try is allowed
    assert (await server.fetch(LOGIN, "POST", {"username": "alice", "password": PASSWORD})).code == 200
    # and a success wipes alice's count: ten more failures are needed to block her again
    for n in range(9):
        assert (await server.fetch(LOGIN, "POST", {"username": "alice", "password": "nope-nope"})).code == 401
    assert (await server.fetch(LOGIN, "POST", {"username": "alice", "password": PASSWORD})).code == 200


async def test_an_address_spraying_usernames_is_blocked_for_every_user(make_server):
    server = await make_server(auth__login_failures_per_address=5, auth__login_window_seconds=120)
    server.add_user("carol")
    for n in range(5):
        response = await server.fetch(LOGIN, "POST", {"username": f"guess{n}", "password": "password1"})
        assert response.code == 401
    retry = refused(await server.fetch(LOGIN, "POST", {"username": "carol", "password": PASSWORD}))
    assert 1 <= retry <= 120
    # malformed bodies are answered 400 before the limiter and never count as failures
    assert (await server.fetch(LOGIN, "POST", {"username": "carol"})).code == 400
