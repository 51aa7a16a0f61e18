"""Ends that reach every node at once: a user removed (``DELETE /api/v1/users/{id}``) or a session
ended (logout, a new login) on one node closes the sockets they hold on every node, with the same
``error`` ``SESSION_EXPIRED`` and 1008 as on the node that served the request, instead of at each
node's next session recheck (``auth.session_recheck_seconds``).

The channel is ``<p>ends`` (Redis pub/sub); a message is ``{"user": <id>}`` or ``{"session": <digest>}``,
a session named by its SHA-256 only (``session_digest``; the id itself is a secret). Each node,
its own messages included, closes what it holds (none: nothing to do). Pub/sub delivers to whoever
is subscribed at that moment: a node that was cut off from Redis when an end was published misses
it, and its session recheck still closes those sockets (the recheck stays the backstop).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import ujson
from redis.exceptions import RedisError

from ..auth.sessions import session_digest
from .keys import key
from .redis import client

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5  # between attempts to subscribe again after losing Redis


def ends_channel(prefix: str) -> str:
    return key(prefix, "ends")


class ClusterEnds:
    """``end_user(user_id)`` and ``end_session_digest(digest)`` close what this node holds; call
    ``start`` on the running loop, ``close`` at shutdown."""

    def __init__(self, url: str, prefix: str, end_user: Callable[[str], object],
                 end_session_digest: Callable[[str], object]) -> None:
        self.channel = ends_channel(prefix)
        self.end_user = end_user
        self.end_session_digest = end_session_digest
        self._redis = client(url, socket_timeout=None, retry=False)  # a subscription waits as long as it must
        self._publisher = client(url, socket_timeout=5.0)
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while the subscription is live (tests await it)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def user_removed(self, user_id: str) -> None:
        await self._publish({"user": user_id})

    async def session_ended(self, session_id: str) -> None:
        await self._publish({"session": session_digest(session_id)})

    async def _publish(self, message: dict[str, str]) -> None:
        try:
            await self._publisher.publish(self.channel, ujson.dumps(message))
        except (RedisError, OSError) as exc:  # the other nodes' session recheck closes them instead
            log.warning("cluster ends: not sent to the other nodes (%s); their session recheck closes them", exc)

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self.take(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("cluster ends: subscription lost (%s); subscribing again", exc)
            finally:
                self.subscribed.clear()
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(RETRY_SECONDS)

    def take(self, data: str | bytes) -> None:
        """One message of the channel; anything else than the two shapes is logged and ignored."""
        try:
            message = ujson.loads(data)
        except ValueError:
            message = None
        if isinstance(message, dict) and isinstance(message.get("user"), str):
            self.end_user(message["user"])
        elif isinstance(message, dict) and isinstance(message.get("session"), str):
            self.end_session_digest(message["session"])
        else:
            log.warning("cluster ends: ignored a message that is neither a user nor a session: %r", data[:200])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._redis.aclose()
        await self._publisher.aclose()
