"""The Redis client for work done per request (session lookups, connection slots, node figures).

A burst of WebSocket upgrades runs hundreds of lookups at once; redis-py's default pool then fails
them with ``MaxConnectionsError`` ("Too many connections"), which dropped half the sockets of a
1,000-connection load test. A blocking pool makes them wait their turn for one of
``MAX_CONNECTIONS`` connections (up to ``WAIT_SECONDS``) instead.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

MAX_CONNECTIONS = 64
WAIT_SECONDS = 5.0


def retry_once() -> dict[str, object]:
    """Client options: a command on a pooled connection Redis closed (it restarted) fails; once
    more, on a fresh connection."""
    return {"retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError]}


def request_client(url: str, client_name: str | None = None) -> aioredis.Redis:
    """``client_name``: the name every connection gives itself (``CLIENT SETNAME``), so other
    nodes can tell from ``CLIENT LIST`` that this process is alive (``slots/redis.py``)."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS,
                                                    decode_responses=True, socket_connect_timeout=2.0,
                                                    socket_timeout=5.0, client_name=client_name,
                                                    **retry_once())  # type: ignore[arg-type]
    return aioredis.Redis(connection_pool=pool)
