"""Sessions end their sockets within the re-check interval, and the logs say what happened without
ever holding a session id, a password or the admin token (issue 6)."""

from __future__ import annotations

import pytest

import asyncio

import json
import logging
import time

from portfolio_ws.logs import JsonFormatter
from tests.builders import position
from tests.harness import PASSWORD

LOGIN = "/api/auth/login"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_an_expired_sessions_sockets_close_1008_within_the_recheck_interval(make_server):
    clock = FakeClock(1_767_625_200.0)
    server = await make_server(clock=clock, auth__session_recheck_seconds=0.5, auth__session_idle_seconds=3600,
                               auth__session_absolute_seconds=3600,
                               server__websocket_ping_interval_seconds=3600)  # no heartbeat closes here
    _, alice_cookie = await server.user_session("alice")
    alice = [await server.connect(alice_cookie) for _ in range(2)]
    clock.now += 1800
    _, bob_cookie = await server.user_session("bob")  # logs in half an hour later
    bob = await server.connect(bob_cookie)

    clock.now += 1800.5  # alice's session is past its absolute lifetime; bob's is not
    expired_at = time.monotonic()
    for client in alice:
        assert await client.closed(timeout=5) == (1008, "Session expired")
    assert time.monotonic() - expired_at < 0.5 + 1.0  # the interval, plus scheduling slack on a busy machine
    await bob.assert_nothing_pending()
    assert len(server.connection_ids()) == 1


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_logs_tell_connects_disconnects_failures_and_limits_but_never_secrets(make_server, caplog):
    admin_token = "admin-token-7f3a9c1e5b2d4f60"
    wrong_token = "guessed-token-0a1b2c3d4e5f"
    wrong_password = "hunter2-wrong-password"
    caplog.set_level(logging.DEBUG)
    server = await make_server(auth__admin_token=admin_token, auth__login_failures_per_user_address=2,
                               limits__messages_per_second=1, limits__rate_limit_burst=2)
    alice, cookie = await server.user_session("alice")
    response = await server.fetch(LOGIN, "POST", {"username": "alice", "password": PASSWORD}, cookie=cookie)
    second_cookie = response.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]  # the first session ends
    secrets = [PASSWORD, wrong_password, admin_token, wrong_token, cookie, second_cookie]

    for _ in range(2):
        assert (await server.fetch(LOGIN, "POST", {"username": "alice", "password": wrong_password})).code == 401
    assert (await server.fetch(LOGIN, "POST", {"username": "alice", "password": PASSWORD})).code == 429
    refused = await server.connect(cookie, expect_connected=False)  # the ended session
    assert await refused.closed() == (1008, "Authentication required")

    client = await server.connect(second_cookie)
    await client.subscribe("positions")
    await client.expect("snapshot")
    server.publish(position(alice.user_id))
    for _ in range(4):  # over the burst of 2: RATE_LIMITED
        await client.send({"type": "ping"})
    replies = [await client.recv() for _ in range(3)]
    assert any(m["type"] == "error" and m["data"]["code"] == "RATE_LIMITED" for m in replies), replies
    assert (await server.fetch("/api/admin/websocket-stats",
                               headers={"Authorization": f"Bearer {admin_token}"})).code == 200
    assert (await server.fetch("/api/admin/websocket-stats",
                               headers={"Authorization": f"Bearer {wrong_token}"})).code == 401
    assert (await server.fetch("/api/portfolio", cookie=cookie)).code == 401
    [handler] = server.service.sockets.values()
    assert (await server.fetch("/api/auth/logout", "POST", cookie=second_cookie)).code == 200
    assert await client.closed() == (1008, "Session expired")
    # the server reads the client's close frame at its paced rate (2 frames/s here): wait for it
    await asyncio.wait_for(handler.closed_future, 10)
    await server.stop()

    records = list(caplog.records)
    formatter = JsonFormatter()
    for record in records:
        line = formatter.format(record)  # logging.json: one JSON object per line
        assert "\n" not in line and {"time", "level", "logger", "message"} <= set(json.loads(line))
        text = " ".join([record.getMessage(), str(record.args), line])
        for secret in secrets:
            assert secret not in text, f"{record.name} logged a secret: {record.getMessage()!r}"
    messages = "\n".join(r.getMessage() for r in records)
    failed = [r for r in records if r.getMessage().startswith(("login failed", "login rate-limited"))]
    assert failed and all(r.levelno == logging.WARNING and "username 'alice'" in r.getMessage() for r in failed)
    for expected in ("login failed for username 'alice' from 127.0.0.1", "login rate-limited (per user+address) from 127.0.0.1",
                     "websocket auth failed from 127.0.0.1",
                     f"connected user={alice.user_id} from 127.0.0.1", "over the message rate limit",
                     f"closed user={alice.user_id} code=1008", "logout from 127.0.0.1 (session ended)"):
        assert expected in messages, f"no log line with {expected!r} in:\n{messages}"
