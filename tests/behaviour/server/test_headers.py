"""server/headers.py and the routes' answers to bad strings and paths: security headers and no
banner on every response, 400/404 (never 500) for lone surrogates and NUL paths, no exception text
in any body, at most one log line for each such request."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import ujson

from portfolio_ws.server.headers import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from tests.harness import PASSWORD

LOGIN = "/api/auth/login"


def assert_hardened(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.code, name, dict(response.headers))
    assert "Server" not in response.headers, response.headers["Server"]
    assert b"Traceback" not in (response.body or b"") and b"Error(" not in (response.body or b"")


async def raw_request(port: int, request: bytes) -> bytes:
    """One request over a plain socket (paths no HTTP client would send); the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return data


def test_the_policy_forbids_framing_and_inline_code():
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path,method,status", [
    ("/", "GET", 200), ("/static/app.js", "GET", 200), ("/static/nope.js", "GET", 404),
    ("/api/health", "GET", 200), ("/api/portfolio", "GET", 401), ("/api/nope", "GET", 404),
    ("/nowhere", "GET", 404), ("/api/docs/openapi.yaml", "GET", 200), ("/metrics", "GET", 401),
    ("/api/auth/login", "GET", 405), ("/ws/portfolio", "GET", 400), ("/api/auth/me", "GET", 401),
])
async def test_every_response_has_the_security_headers_and_no_banner(make_server, path, method, status):
    server = await make_server()
    response = await server.fetch(path, method)
    assert response.code == status
    assert_hardened(response)


async def test_a_websocket_refusal_and_upgrade_carry_them_too(make_server):
    server = await make_server()
    response = await server.fetch("/ws/portfolio", headers={"Origin": "https://evil.example", "Upgrade": "websocket",
                                                           "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                                                           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert response.code == 403
    assert_hardened(response)
    answer = await raw_request(server.port, b"GET /ws/portfolio HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 101")
    assert "X-Frame-Options: DENY" in head and "Server:" not in head


@pytest.mark.parametrize("body", [
    '{"username": "\\ud800", "password": "x"}', '{"username": "alice", "password": "\\udfff"}',
    '{"username": "alice", "password": "pw\\ud83d"}', '{"\\ud800": 1, "username": "a", "password": "b"}',
    '{"username": "alice", "password": "x", "extra": [["\\udc00"]]}',
])
async def test_lone_surrogates_in_a_login_get_400_and_one_log_line_at_most(make_server, caplog, body):
    server = await make_server()
    server.add_user("alice")
    caplog.set_level(logging.INFO)
    caplog.clear()
    response = await server.fetch(LOGIN, "POST", body.encode())
    assert response.code == 400
    assert ujson.loads(response.body)["error"]["code"] == "INVALID_JSON"
    assert_hardened(response)
    ours = [r for r in caplog.records if r.name != "tornado.general"]  # tornado.general: a debug aid, not shown
    assert len(ours) <= 1 and not any(r.exc_info for r in caplog.records), caplog.text
    assert (await server.fetch(LOGIN, "POST", {"username": "alice", "password": PASSWORD})).code == 200


@pytest.mark.parametrize("path,statuses", [
    ("/static/app.js%00", {404}), ("/static/%00", {404}), ("/%00", {404}), ("/api/health%00", {404}),
    ("/static/app.js%00.png", {404}), ("/ws/portfolio%00", {404}), ("/api/docs/openapi.yaml%00", {404}),
    ("/static/%ED%A0%80", {400, 404}), ("/static/%ff", {400, 404}), ("/static/..%2f..%2fetc%2fpasswd", {403, 404}),
    ("/api/docs/%ED%A0%80.yaml", {400, 404}), ("/static/app.js?v=%00", {200}), ("/%ED%A0%80", {400, 404}),
])
async def test_nul_and_undecodable_paths_get_404_or_400_never_500(make_server, caplog, path, statuses):
    server = await make_server()
    caplog.set_level(logging.INFO)
    caplog.clear()
    answer = await raw_request(server.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    status = int(answer.split(b" ", 2)[1])
    assert status in statuses, answer[:400]
    assert b"Traceback" not in answer and b"ValueError" not in answer and b"null byte" not in answer
    assert b"X-Content-Type-Options: nosniff" in answer
    assert not any(r.exc_info for r in caplog.records) and len(caplog.records) <= 2, caplog.text


async def test_an_exception_in_a_handler_shows_no_text_of_it(make_server, caplog):
    server = await make_server()

    def broken(*args: Any) -> Any:
        raise RuntimeError("secret internals /home/app/db.sqlite3")

    server.service.core.portfolio = broken  # type: ignore[method-assign]
    _, cookie = await server.user_session("alice")
    response = await server.fetch("/api/portfolio", cookie=cookie)
    assert response.code == 500
    assert b"secret" not in response.body and b"RuntimeError" not in response.body and b"Traceback" not in response.body
    assert ujson.loads(response.body)["error"]["code"] == "INTERNAL_SERVER_ERROR"
    assert_hardened(response)
