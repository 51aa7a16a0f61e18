"""``PUT /api/v1/users/{userId}/portfolio``: a platform replaces one user's whole state (a sync, the
API document's "Position sync operation"), and the user's open sockets get a fresh snapshot.

Server to server, like ``POST /api/v1/publish``: a bearer API key with the ``publish`` scope, a JSON
body of at most ``publish.MAX_BODY_BYTES`` (refused 413 by the accept layer before it is read). The
body is ``{"account": {...} | null, "positions": [...], "orders": [...], "trades": [...]?}``, each
element an event's ``data`` as a published item has it (``core/sync.py`` has the rules). All or
nothing: any invalid field and nothing changes, the answer 400 naming every error's path
(``positions[3].qty``). 404 for a user we don't know (unless the platform's sessions stand for the
users: then the publisher vouches for them, as for publish). 200: the offset the sync took and
what it held. In a cluster the sync is in Redis (state, offset, history) before the answer; Redis
away (or slower than ``publish.CLUSTER_WAIT_SECONDS``): 503, nothing changed, retry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from redis.exceptions import RedisError
from tornado.web import HTTPError

from ..auth.sessions import SessionStore
from ..auth.users import UserStoreBase
from ..core import jsontext
from ..core.ingest import TEXT_MAX
from ..ingest.items import check_sync, known_users
from .http import encodable
from .platform import USERS_PATH, PlatformHandler
from .publish import CLUSTER_WAIT_SECONDS, Publishing

log = logging.getLogger("portfolio_ws.sync")

PATH = USERS_PATH + r"/([^/]+)/portfolio"


def is_sync_path(path: str) -> bool:
    """True for a sync's path (the accept layer gives it the publish route's body limit)."""
    return path.startswith(USERS_PATH + "/") and path.endswith("/portfolio")


class SyncHandler(PlatformHandler):
    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   publishing: Publishing) -> None:
        super().initialize(sessions, users, clock, publishing.keys, publishing.counters)
        self.publishing = publishing

    async def put(self, user_id: str) -> None:
        key = await self.require_key("publish")
        self.require_json()
        try:
            body: Any = jsontext.loads(self.request.body or b"")
        except jsontext.NotJson as exc:
            raise HTTPError(400, f"The body must be a JSON object: account, positions, orders ({exc})",
                            reason="Invalid JSON") from None
        if not encodable(body):
            raise HTTPError(400, "Strings must be valid Unicode (no lone surrogates)", reason="Invalid JSON")
        publishing = self.publishing
        if len(user_id) > TEXT_MAX or not await known_users({user_id}, self.users, publishing.external_users):
            raise HTTPError(404, f"No user {user_id[:TEXT_MAX]}", reason="Not Found")
        sync = check_sync(user_id, body)
        if isinstance(sync, list):
            first = sync[0]
            where = f"{first.field}: " if first.field else ""
            self.write_json(400, {"error": {"code": "INVALID_REQUEST", "message": where + first.message,
                                            "field": first.field},
                                  "errors": [{"field": e.field, "message": e.message} for e in sync]})
            return
        future = publishing.bus.publish_sync(sync)
        try:
            offset = await asyncio.wait_for(future, CLUSTER_WAIT_SECONDS)
        except (asyncio.TimeoutError, ConnectionError, RedisError, OSError):
            log.warning("sync of %s refused: Redis did not take it within %.0f s", user_id, CLUSTER_WAIT_SECONDS)
            raise HTTPError(503, "Syncing is unavailable; retry", reason="Service Unavailable") from None
        if offset is None and publishing.offset_of is not None:  # one node: the core numbered it
            offset = publishing.offset_of(user_id)
        counts = sync.counts()
        log.info("sync of %s by key %s: offset %s, %d positions, %d orders, %s trades", user_id, key.name, offset,
                 counts["positions"], counts["orders"], "kept" if sync.keep_trades else counts["trades"])
        self.write_json(200, {"userId": user_id, "offset": offset, **counts, "tradesKept": sync.keep_trades})
