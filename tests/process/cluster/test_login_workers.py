"""The login limits through ``serve --workers 2`` (issue 13): the counts live in Redis, so two
processes on one port give an attacker no extra attempts. Real processes, a private redis-server."""

from __future__ import annotations

import asyncio
from typing import Any

import ujson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from tests.harness import PASSWORD
from tests.redis_server import redis_server  # noqa: F401  (a fixture)
from tests.procs import add_users, serve_process  # noqa: F401  (a fixture)


async def login_from(http: AsyncHTTPClient, server: Any, address: str, password: str) -> int:
    request = HTTPRequest(server.url + "/api/auth/login", method="POST", network_interface=address,
                          headers={"Content-Type": "application/json"}, request_timeout=60,
                          body=ujson.dumps({"username": "alice", "password": password}))
    try:
        return (await http.fetch(request)).code  # type: ignore[no-any-return]
    except HTTPClientError as exc:
        return exc.code


async def test_200_wrong_passwords_across_two_workers_verify_at_most_10(serve_process, redis_server):
    server = serve_process("--workers", "2", env={"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_server.url})
    add_users(server.database, ["alice"])
    await server.start()
    http = AsyncHTTPClient(force_instance=True, max_clients=200)  # all 200 in flight at once
    try:
        # one connection per attempt: the kernel spreads them over both workers
        codes = await asyncio.gather(*(login_from(http, server, "127.0.0.1", "wrong password") for _ in range(200)))
        assert codes.count(401) == 10 and codes.count(429) == 190, sorted(set(codes))
        assert await login_from(http, server, "127.0.0.1", PASSWORD) == 429
        assert await login_from(http, server, "127.0.0.2", PASSWORD) == 200  # the user, from their own address
    finally:
        http.close()
