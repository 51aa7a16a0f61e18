"""External sessions (issue 8): portfolio-ws beside an existing platform, trusting its login. The
``session`` cookie is checked against the platform's "who is this" URL (here a small platform stub
on its own socket), the answer mapped to a user id and cached briefly; a platform that can't answer
refuses new sockets (1008) but never drops open ones."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import ujson
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from tests.builders import position


class Platform:
    """The existing platform: ``GET /api/auth/me`` knows some session cookies, or is down (503)."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {
            "platform-alice": {"user": {"id": "plat-alice", "email": "a@example.com"}, "username": "alice"},
            "platform-bob": {"user": {"id": "plat-bob"}, "username": "bob"},
        }
        self.calls = 0
        self.down = False
        platform = self

        class Me(RequestHandler):
            def get(self) -> None:
                platform.calls += 1
                if platform.down:
                    self.set_status(503)
                    return
                answer = platform.sessions.get(self.get_cookie("session") or "")
                if answer is None:
                    self.set_status(401)
                    self.finish({"error": "not logged in"})
                    return
                self.finish(ujson.dumps(answer))

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.http = HTTPServer(Application([(r"/api/auth/me", Me)]))
        self.http.listen(self.port, "127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port}/api/auth/me"


@pytest.fixture
def platform(io_loop: Any) -> Any:
    stub = Platform()
    yield stub
    stub.http.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def start(make_server: Any, platform: Platform, clock: Any = None) -> Any:
    return await make_server(clock=clock, auth__external_session_url=platform.url,
                             auth__external_user_id_field="user.id", auth__external_cache_seconds=10)


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_platform_session_streams_that_users_portfolio_and_rest_answers_for_it(make_server, platform):
    server = await start(make_server, platform)
    client = await server.connect("platform-alice")
    await client.subscribe("positions")
    snapshot = await client.expect("snapshot")
    assert snapshot["userId"] == "plat-alice"
    server.publish(position("plat-bob", "MSFT"))
    server.publish(position("plat-alice", "AAPL"))
    update = await client.expect("position_update")  # bob's event never reaches alice
    assert (update["userId"], update["data"]["symbol"]) == ("plat-alice", "AAPL")

    me = await server.fetch("/api/auth/me", cookie="platform-alice")
    assert me.code == 200 and ujson.loads(me.body)["userId"] == "plat-alice"
    assert ujson.loads(me.body)["username"] == "alice"
    portfolio = await server.fetch("/api/portfolio", cookie="platform-alice")
    assert portfolio.code == 200
    body = ujson.loads(portfolio.body)
    assert body["userId"] == "plat-alice" and [p["symbol"] for p in body["data"]["positions"]] == ["AAPL"]


async def test_a_cookie_the_platform_does_not_know_is_refused_and_login_is_the_platforms(make_server, platform):
    server = await start(make_server, platform)
    refused = await server.connect("forged-cookie", expect_connected=False)
    assert await refused.closed() == (1008, "Authentication required")
    assert (await server.fetch("/api/portfolio", cookie="forged-cookie")).code == 401
    login = await server.fetch("/api/auth/login", "POST", {"username": "alice", "password": "x" * 12})
    assert login.code == 404 and b"platform" in login.body
    assert (await server.fetch("/api/auth/logout", "POST", cookie="platform-alice")).code == 404


async def test_the_platforms_verdict_is_cached_per_session_then_asked_again(make_server, platform):
    clock = Clock()
    server = await start(make_server, platform, clock)
    for _ in range(3):
        await server.connect("platform-alice")
    refused = await server.connect("forged-cookie", expect_connected=False)
    assert await refused.closed() == (1008, "Authentication required")
    await server.connect("forged-cookie", expect_connected=False)
    assert platform.calls == 2  # one for alice's three sockets, one for the forged cookie's two

    clock.now += 11  # past external_cache_seconds
    await server.connect("platform-alice")
    assert platform.calls == 3


async def test_a_platform_outage_refuses_new_sockets_but_keeps_open_ones(make_server, platform):
    clock = Clock()
    server = await start(make_server, platform, clock)
    alice = await server.connect("platform-alice")
    await alice.subscribe("positions")
    await alice.expect("snapshot")

    platform.down = True
    clock.now += 11
    bob = await server.connect("platform-bob", expect_connected=False)
    assert await bob.closed() == (1008, "Authentication required")
    await server.service.recheck.run()  # the periodic re-check, while the platform is down
    server.publish(position("plat-alice", "NVDA"))
    server.service.flush()  # the clock stands still here: send the window now
    assert (await alice.expect("position_update"))["data"]["symbol"] == "NVDA"  # still streaming

    platform.down = False
    del platform.sessions["platform-alice"]  # alice logged out on the platform
    clock.now += 11
    await server.service.recheck.run()
    assert await alice.closed() == (1008, "Session expired")


async def test_a_platform_answer_without_the_user_field_is_a_failure_not_a_user(make_server, platform):
    platform.sessions["platform-odd"] = {"user": {}, "username": "odd"}
    server = await start(make_server, platform)
    refused = await server.connect("platform-odd", expect_connected=False)
    assert await refused.closed() == (1008, "Authentication required")
    assert server.service.sessions.failures == 1  # type: ignore[attr-defined]
