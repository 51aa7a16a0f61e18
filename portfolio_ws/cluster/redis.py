"""The Redis client for work done per request (session lookups, connection slots, node figures).

A burst of WebSocket upgrades runs hundreds of lookups at once; redis-py's default pool then fails
them with ``MaxConnectionsError`` ("Too many connections"), which dropped half the sockets of a
1,000-connection load test. A blocking pool makes them wait their turn for one of
``MAX_CONNECTIONS`` connections (up to ``WAIT_SECONDS``) instead.
"""

from __future__ import annotations

import redis.asyncio as aioredis

MAX_CONNECTIONS = 64
WAIT_SECONDS = 5.0


def request_client(url: str) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS,
                                                    decode_responses=True, socket_connect_timeout=2.0,
                                                    socket_timeout=5.0)
    return aioredis.Redis(connection_pool=pool)
