"""Every Redis client the server makes comes from here: ``request_client`` for work done per
request (session lookups, connection slots, node figures, user loads), ``client`` for one
long-lived connection of its own (the bus's publisher and subscriber, the feed lock).

A burst of WebSocket upgrades runs hundreds of lookups at once; redis-py's default pool then fails
them with ``MaxConnectionsError`` ("Too many connections"), which dropped half the sockets of a
1,000-connection load test. A blocking pool makes them wait their turn for one of
``MAX_CONNECTIONS`` connections (up to ``WAIT_SECONDS``) instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

MAX_CONNECTIONS = 64
WAIT_SECONDS = 5.0


def redacted(url: str) -> str:
    """A Redis URL without its password (nor its query, which may carry one), for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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


def client(url: str, *, text: bool = True, socket_timeout: float | None = None,
           retry: bool = True) -> aioredis.Redis:
    """A client on redis-py's own pool. ``text``: replies decoded to ``str`` (else ``bytes``);
    ``socket_timeout``: how long a command may wait on a paused Redis (None: no limit);
    ``retry``: a command on a connection Redis closed is tried once more (``retry_once``)."""
    options: dict[str, object] = retry_once() if retry else {}
    return aioredis.Redis.from_url(url, decode_responses=text, socket_connect_timeout=2.0,
                                   socket_timeout=socket_timeout, **options)  # type: ignore[arg-type]
