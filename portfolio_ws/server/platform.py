"""The platform API's common ground and its user routes (server to server, an API key; never a
browser session):

- ``PlatformHandler``: the bearer API key with the route's scope (401 with ``WWW-Authenticate``
  for no key or an unknown or revoked one, 403 for a key without the scope), and the counts every
  ``/api/v1/...`` request adds to the admin report (``admin.PlatformCounters``).
- ``POST /api/v1/users`` (``admin`` scope): create a user, ``{"username", "password"}`` or without a
  password for a user who can't log in here (one the platform's own sessions stand for). 201 with the
  new ``userId``; a taken username is 409 ``USER_EXISTS`` with the existing ``userId``, so a retried
  create whose answer was lost learns the id all the same.
- ``DELETE /api/v1/users/{userId}`` (``admin`` scope): remove the user, end their sessions, and
  close their sockets now on every node (an ``error`` ``SESSION_EXPIRED`` then 1008, as for any
  ended session: clients stop and ask for a login; other nodes hear of it through
  ``cluster/ends.py``). Their linked broker account (``accounts link``) is
  unlinked too, as ``users remove`` does, so a running Alpaca feed stops streaming it. 204; 404 for
  an unknown user.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from tornado.ioloop import IOLoop
from tornado.web import HTTPError

from ..auth.apikeys import ApiKey, ApiKeyStoreBase
from ..auth.hashqueue import HashQueue, HashQueueFull
from ..auth.sessions import SessionStore
from ..auth.users import UserStoreBase, validate_password, validate_username
from ..errors import UsageError
from .admin import PlatformCounters
from .http import ApiHandler

log = logging.getLogger("portfolio_ws.platform")

USERS_PATH = "/api/v1/users"
USER_FIELDS = ("username", "password")  # a body with any other field is refused, naming it


class PlatformHandler(ApiHandler):
    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   keys: ApiKeyStoreBase, counters: PlatformCounters) -> None:
        super().initialize(sessions, users, clock)
        self.keys = keys
        self.counters = counters

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401:  # set here: Tornado clears headers set before an HTTPError
            self.set_header("WWW-Authenticate", 'Bearer realm="portfolio-ws"')
        super().write_error(status_code, **kwargs)

    async def require_key(self, scope: str) -> ApiKey:
        header = self.request.headers.get("Authorization", "")
        key = await self.keys.verify_async(header[7:].strip()) if header.startswith("Bearer ") else None
        if key is None:
            raise HTTPError(401, "A valid API key is required (Authorization: Bearer <key>)", reason="Unauthorized")
        if scope not in key.scopes:
            raise HTTPError(403, f"This API key has no {scope} scope", reason="Forbidden")
        return key

    def require_json(self) -> None:
        content_type = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise HTTPError(415, "The body must be JSON (Content-Type: application/json)",
                            reason="Unsupported Media Type")

    def on_finish(self) -> None:
        self.counters.requests += 1
        if 400 <= self.get_status() < 500:
            self.counters.clientErrors += 1


class UserSockets(Protocol):
    """What the user routes use of the stream (the service)."""

    def end_user(self, user_id: str) -> int:
        """Close the user's sockets here and on every node; how many here."""


class UsersHandler(PlatformHandler):
    """``POST /api/v1/users``."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   keys: ApiKeyStoreBase, counters: PlatformCounters, hash_queue: HashQueue) -> None:
        super().initialize(sessions, users, clock, keys, counters)
        self.hash_queue = hash_queue

    async def post(self) -> None:
        key = await self.require_key("admin")
        self.require_json()
        body = self.json_body(USER_FIELDS)
        username: Any = body.get("username")  # a str once validated
        password: Any = body.get("password")
        try:
            field = "username"
            validate_username(username)
            field = "password"
            if password is None and "password" in body:
                raise UsageError("password must be a string (leave it out for a user who can't log in here)")
            if "password" in body:  # left out: a user who can't log in here
                validate_password(password)
        except UsageError as exc:
            self.write_json(400, {"error": {"code": "INVALID_REQUEST", "message": str(exc), "field": field}})
            return
        await self._create(key, username, password)

    async def _create(self, key: ApiKey, username: str, password: str | None) -> None:
        existing = await self.users.by_username_async(username)
        if existing is None:
            try:
                user = await self.users.add_async(username, password, self.hash_queue)
            except HashQueueFull:
                self.set_header("Retry-After", "1")
                raise HTTPError(503, "Too many password checks; retry shortly", reason="Service Unavailable") from None
            except UsageError:  # created between our look and the insert
                existing = await self.users.by_username_async(username)
            else:
                log.info("user %s (%s) created by key %s", user.username, user.user_id, key.name)
                self.write_json(201, {"userId": user.user_id, "username": user.username,
                                      "canLogIn": password is not None})
                return
        if existing is None:
            raise HTTPError(503, "The user store changed under the request; retry", reason="Service Unavailable")
        self.write_json(409, {"error": {"code": "USER_EXISTS", "message": f"user {existing.username!r} already exists",
                                        "field": "username"}, "userId": existing.user_id})


class UserHandler(PlatformHandler):
    """``DELETE /api/v1/users/{userId}``."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   keys: ApiKeyStoreBase, counters: PlatformCounters, stream: UserSockets,
                   unlink: Callable[[str], bool]) -> None:
        super().initialize(sessions, users, clock, keys, counters)
        self.stream = stream
        self.unlink = unlink  # blocking (the users' database): run on the executor

    async def delete(self, user_id: str) -> None:
        key = await self.require_key("admin")
        if not await self.users.remove_async(user_id):
            raise HTTPError(404, f"No user {user_id}", reason="Not Found")
        ended = await self.sessions.delete_for_user(user_id)
        closed = self.stream.end_user(user_id)
        try:
            unlinked = await IOLoop.current().run_in_executor(None, self.unlink, user_id)
        except Exception:  # the user is gone all the same; the row is left for `accounts unlink`
            log.exception("user %s removed, but their linked broker account could not be unlinked", user_id)
            unlinked = False
        log.info("user %s removed by key %s: %d session(s) ended, %d socket(s) closed here%s", user_id, key.name,
                 ended, closed, ", broker account unlinked" if unlinked else "")
        self.set_status(204)
        self.finish()
