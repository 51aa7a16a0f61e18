"""Redis as a cache of the database's sessions, for a cluster: the database (``auth.database``:
SQLite on one host, PostgreSQL across hosts) is where sessions live; Redis saves the nodes a database
read on most lookups.

Why not sessions in Redis alone: when Redis restarted empty every session was gone, and every socket
was closed 1008 ``Session expired`` within a recheck period (clients don't reconnect after 1008).

Rules:
- every change goes to the database first, then to the cache (best effort: a cache that can't be
  written is logged, never an error for the caller);
- a cache entry lives at most ``CACHE_SECONDS``, so one the cache failed to delete (Redis down at a
  logout) is gone within that; a lookup that would move ``last_seen_at`` (``SessionLifetime``) goes
  to the database, which keeps the idle timer;
- Redis unreachable, restarted empty or paused: lookups answer from the database, nothing raises.
Keys (prefix ``cluster.key_prefix``), only the SHA-256 of each id (``session_digest``):
``<p>session:<digest>`` hash ``user_id``, ``created_at``, ``last_seen_at``; ``<p>sessions-of:<user>``
the user's cached digests, so ending a user's sessions clears every node's view at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...cluster.keys import KEY_PREFIX, key
from ...cluster.redis import request_client
from . import Session, SessionStore, plausible_session_id, session_digest

log = logging.getLogger(__name__)

CACHE_SECONDS = 60
LOG_EVERY_SECONDS = 10.0  # a cache that is down is logged about this often, not per request


class RedisSessionCache(SessionStore):
    def __init__(self, store: SessionStore, url: str, prefix: str = KEY_PREFIX) -> None:
        self.store = store
        self.lifetime = store.lifetime
        self._redis: aioredis.Redis = request_client(url)
        self.prefix = prefix
        self.errors = 0
        self._logged_at = float("-inf")

    def _session_key(self, digest: str) -> str:
        return key(self.prefix, "session", digest)

    def _user_key(self, user_id: str) -> str:
        return key(self.prefix, "sessions-of", user_id)

    def _failed(self, doing: str, exc: Exception) -> None:
        self.errors += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning("session cache: cannot %s Redis (%s); answering from the database", doing, exc)

    async def _read(self, digest: str) -> tuple[str, float, float] | None:
        try:
            fields: dict[str, Any] = await self._redis.hgetall(  # type: ignore[misc,assignment]
                self._session_key(digest))
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            return None
        try:
            return str(fields["user_id"]), float(fields["created_at"]), float(fields["last_seen_at"])
        except (KeyError, ValueError):  # a miss (or an entry not ours): the database decides
            return None

    async def _remember(self, digest: str, session: Session, now: float) -> None:
        left = self.lifetime.expires_at(session.created_at, session.last_seen_at) - now
        key, users = self._session_key(digest), self._user_key(session.user_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"user_id": session.user_id, "created_at": repr(session.created_at),
                                        "last_seen_at": repr(session.last_seen_at)})
                pipe.expire(key, max(1, int(min(CACHE_SECONDS, left))))
                pipe.sadd(users, digest)
                pipe.expire(users, CACHE_SECONDS + 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("write", exc)

    async def _forget(self, digests: list[str], user_id: str | None = None) -> None:
        try:
            keys = [self._session_key(d) for d in digests]
            if user_id is not None:
                keys.append(self._user_key(user_id))
            if keys:
                await self._redis.delete(*keys)
        except (RedisError, OSError) as exc:  # the entry expires within CACHE_SECONDS by itself
            self._failed("delete in", exc)

    async def create(self, user_id: str, now: float) -> str:
        session_id = await self.store.create(user_id, now)
        await self._remember(session_digest(session_id), Session(session_id, user_id, now, now), now)
        return session_id

    async def lookup(self, session_id: str, now: float) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        digest = session_digest(session_id)
        cached = await self._read(digest)
        if cached is not None:
            user_id, created_at, last_seen_at = cached
            if not (self.lifetime.is_expired(created_at, last_seen_at, now)
                    or self.lifetime.needs_touch(last_seen_at, now)):
                return Session(session_id, user_id, created_at, last_seen_at)
        session = await self.store.lookup(session_id, now)
        if session is None:
            if cached is not None:
                await self._forget([digest])
            return None
        await self._remember(digest, session, now)
        return session

    async def still_valid(self, session_id: str, now: float) -> bool | None:
        try:
            return await self.lookup(session_id, now) is not None
        except Exception as exc:  # the database can't answer now: keep the socket, ask again later
            self._failed("check a session with", exc)
            return None

    async def delete(self, session_id: str) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        session = await self.store.delete(session_id)
        await self._forget([session_digest(session_id)])
        return session

    async def delete_for_user(self, user_id: str) -> int:
        ended = await self.store.delete_for_user(user_id)
        try:
            digests: set[str] = await self._redis.smembers(  # type: ignore[misc,assignment]
                self._user_key(user_id))
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            return ended
        await self._forget(sorted(digests), user_id)
        return ended

    async def purge_expired(self, now: float) -> int:
        return await self.store.purge_expired(now)  # cache entries end with their TTL

    async def close(self) -> None:
        await self.store.close()
        await self._redis.aclose()
