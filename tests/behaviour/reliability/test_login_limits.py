"""Login under attack, on a real socket (issue 13): attempts counted as they start, per username and
address with delays (never a lock) for the username alone, client addresses from trusted proxies
only, JSON bodies and allowed Origins only. Other addresses are real: 127.0.0.2 and up are loopback."""

from __future__ import annotations

import pytest

import asyncio
import time
from typing import Any

import ujson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from tests.harness import PASSWORD, FakeClock

LOGIN = "/api/auth/login"
WRONG = {"username": "alice", "password": "wrong password"}
RIGHT = {"username": "alice", "password": PASSWORD}


async def login_from(server: Any, address: str, body: Any, headers: dict[str, str] | None = None,
                     http: AsyncHTTPClient | None = None) -> Any:
    """A login whose socket comes from ``address`` (any 127.x.y.z)."""
    request = HTTPRequest(server.url + LOGIN, method="POST", body=ujson.dumps(body), network_interface=address,
                          headers={"Content-Type": "application/json", **(headers or {})}, request_timeout=60)
    try:
        return await (http or server.http_client).fetch(request)
    except HTTPClientError as exc:
        assert exc.response is not None
        return exc.response


def refused(response: Any) -> int:
    assert response.code == 429, response.body
    assert ujson.loads(response.body) == {"error": {"code": "TOO_MANY_REQUESTS",
                                                    "message": "Too many failed logins; try again later"}}
    assert "Set-Cookie" not in response.headers
    return int(response.headers["Retry-After"])


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_200_concurrent_wrong_passwords_verify_at_most_10_and_the_user_still_logs_in_elsewhere(make_server):
    server = await make_server()
    server.add_user("alice")
    http = AsyncHTTPClient(force_instance=True, max_clients=200)  # all 200 in flight at once
    responses = await asyncio.gather(*(login_from(server, "127.0.0.1", WRONG, http=http) for _ in range(200)))
    http.close()
    codes = [r.code for r in responses]
    assert codes.count(401) == 10 and codes.count(429) == 190, sorted(set(codes))
    assert all(1 <= refused(r) <= 300 for r in responses if r.code == 429)
    # the right password from the attacker's address is refused unchecked ...
    refused(await login_from(server, "127.0.0.1", RIGHT))
    # ... from the user's own address it logs in, after a short delay (the username is not locked)
    started = time.monotonic()
    response = await login_from(server, "127.0.0.2", RIGHT)
    assert response.code == 200, response.body
    assert 0.5 <= time.monotonic() - started < 5


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_the_username_alone_is_slowed_not_locked_by_attempts_from_many_addresses(make_server):
    server = await make_server(auth__login_user_delay_after=3, auth__login_user_delay_seconds=0.05,
                               auth__login_user_max_delay_seconds=0.2)
    server.add_user("alice")
    for n in range(2, 10):  # 8 addresses, 2 wrong passwords each: 16 attempts at alice
        for _ in range(2):
            assert (await login_from(server, f"127.0.0.{n}", WRONG)).code == 401
    started = time.monotonic()
    assert (await login_from(server, "127.0.1.1", RIGHT)).code == 200
    assert 0.2 <= time.monotonic() - started < 3  # the longest delay, no refusal
    started = time.monotonic()  # the success cleared the username's count: no delay now
    assert (await login_from(server, "127.0.1.1", RIGHT)).code == 200
    assert time.monotonic() - started < 0.2


async def test_the_limits_follow_the_clock_and_an_address_spraying_usernames_is_blocked(make_server):
    clock = FakeClock(1_767_625_200.0)
    server = await make_server(clock=clock, auth__login_failures_per_address=5)
    server.add_user("carol")
    for n in range(5):
        clock.now += 1
        assert (await server.fetch(LOGIN, "POST", {"username": f"guess{n}", "password": "password1"})).code == 401
    assert refused(await server.fetch(LOGIN, "POST", {"username": "carol", "password": PASSWORD})) == 296
    # malformed bodies are answered 400 before the limiter and never count
    assert (await server.fetch(LOGIN, "POST", {"username": "carol"})).code == 400
    assert (await login_from(server, "127.0.0.2", {"username": "carol", "password": PASSWORD})).code == 200
    clock.now += 296  # the oldest attempt left the 5-minute window
    assert (await server.fetch(LOGIN, "POST", {"username": "carol", "password": PASSWORD})).code == 200


async def test_forwarded_addresses_count_only_from_a_trusted_proxy(make_server):
    server = await make_server(auth__login_failures_per_address=3)
    server.add_user("alice")
    # no trusted proxies: X-Forwarded-For is the client's own say, ignored
    for n in range(3):
        forged = {"X-Forwarded-For": f"192.0.2.{n}", "X-Real-IP": f"192.0.2.{n}"}
        assert (await login_from(server, "127.0.0.1", {"username": f"u{n}", "password": "x"}, forged)).code == 401
    refused(await login_from(server, "127.0.0.1", RIGHT, {"X-Forwarded-For": "192.0.2.99"}))


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_clients(make_server):
    proxied = await make_server(auth__login_failures_per_address=3, server__trusted_proxies="127.0.0.0/24")
    proxied.add_user("alice")
    for n in range(3):  # through the proxy, one client behind it
        spoof = {"X-Forwarded-For": f"10.9.9.{n}, 198.51.100.7"}  # what the client wrote, then what the proxy saw
        assert (await login_from(proxied, "127.0.0.1", {"username": f"u{n}", "password": "x"}, spoof)).code == 401
    refused(await login_from(proxied, "127.0.0.1", RIGHT, {"X-Forwarded-For": "198.51.100.7"}))
    refused(await login_from(proxied, "127.0.0.1", RIGHT, {"X-Real-IP": "198.51.100.7"}))
    # another client behind the same proxy is not blocked
    assert (await login_from(proxied, "127.0.0.1", RIGHT, {"X-Forwarded-For": "198.51.100.8"})).code == 200
    # a peer outside the trusted range can't name an address: it is counted as itself
    for n in range(3):
        await login_from(proxied, "127.0.1.5", {"username": f"v{n}", "password": "x"}, {"X-Forwarded-For": f"203.0.113.{n}"})
    refused(await login_from(proxied, "127.0.1.5", RIGHT, {"X-Forwarded-For": "203.0.113.50"}))


async def test_login_takes_only_json_and_only_from_an_allowed_origin(make_server):
    server = await make_server()
    server.add_user("alice")
    body = ujson.dumps(RIGHT)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/json",
                         "application/jsonx"):
        response = await server.fetch(LOGIN, "POST", body, headers={"Content-Type": content_type})
        assert response.code == 415, content_type
        assert ujson.loads(response.body)["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    for origin in ("https://evil.example", "null", f"http://127.0.0.1:{server.port + 1}"):
        response = await server.fetch(LOGIN, "POST", body, headers={"Origin": origin})
        assert response.code == 403, origin
        assert "Set-Cookie" not in response.headers
    for headers in ({"Origin": f"http://127.0.0.1:{server.port}"}, {"Content-Type": "application/json; charset=utf-8"}, {}):
        assert (await server.fetch(LOGIN, "POST", body, headers=headers)).code == 200, headers


async def test_login_origins_follow_the_allowlist_when_one_is_set(make_server):
    allowed = await make_server(server__allowed_origins="https://app.example")
    body = ujson.dumps(RIGHT)
    allowed.add_user("alice")
    assert (await allowed.fetch(LOGIN, "POST", body, headers={"Origin": "https://app.example"})).code == 200
    assert (await allowed.fetch(LOGIN, "POST", body, headers={"Origin": f"http://127.0.0.1:{allowed.port}"})).code == 403
