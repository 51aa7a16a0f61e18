"""Sessions owned by an existing platform (``auth.external_session_url``): portfolio-ws beside a
platform's REST API, its users logging in there, not here.

Rules:
- A session id is the platform's own ``session`` cookie. It is valid when the platform's URL (its
  ``GET /api/auth/me`` or the like) answers 200 with a JSON object naming the user
  (``auth.external_user_id_field``, a dotted path such as ``user.id``) to a request carrying only
  that cookie. 401 or 403: not a session. Anything else (unreachable, timeout, 5xx, a body without
  the field) is a *failure*: no verdict.
- Verdicts are cached ``auth.external_cache_seconds`` by the id's digest (never the id itself), so
  a reconnect storm costs the platform one call per session, not one per socket.
- A failure refuses new connections (1008 ``Authentication required``: ``lookup`` returns None) but
  never closes open ones: ``still_valid`` answers None ("unknown") and the re-check keeps them.
- Login and logout belong to the platform: ``create`` is refused; ``delete`` only forgets the cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ujson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from ...errors import UsageError
from ...settings import AuthSettings
from . import Session, SessionLifetime, SessionStore, plausible_session_id, session_digest
from ..users import User

log = logging.getLogger("portfolio_ws.auth.external")

class PlatformUnavailable(Exception):
    """The platform gave no verdict (unreachable, timed out, 5xx, an answer we can't read)."""


@dataclass(frozen=True)
class PlatformAnswer:
    """The platform's verdict on one session id."""

    user_id: str | None  # None: the platform says this is not a session (401/403)
    username: str | None = None


@dataclass
class _Cached:
    answer: PlatformAnswer
    until: float


def _pick(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


class ExternalSessionStore(SessionStore):
    def __init__(self, url: str, lifetime: SessionLifetime, *, user_id_field: str = "userId",
                 cache_seconds: float = 10.0, timeout_seconds: float = 3.0, cookie_name: str = "session",
                 max_cached: int = 100_000) -> None:
        self.url = url
        self.lifetime = lifetime
        self.user_id_field = user_id_field
        self.cache_seconds = cache_seconds
        self.timeout_seconds = timeout_seconds
        self.cookie_name = cookie_name
        self.max_cached = max_cached
        self._cache: dict[str, _Cached] = {}
        self._http = AsyncHTTPClient(force_instance=True)
        self.calls = 0      # requests made to the platform (tests, stats)
        self.failures = 0   # of which gave no verdict

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> ExternalSessionStore:
        return cls(settings.external_session_url, SessionLifetime.from_settings(settings),
                   user_id_field=settings.external_user_id_field,
                   cache_seconds=settings.external_cache_seconds,
                   timeout_seconds=settings.external_timeout_seconds)

    # ---- the platform ---------------------------------------------------------------------
    async def _ask(self, session_id: str) -> PlatformAnswer:
        """One request to the platform. Raises PlatformUnavailable when it gives no verdict."""
        self.calls += 1
        request = HTTPRequest(self.url, headers={"Cookie": f"{self.cookie_name}={session_id}",
                                                 "Accept": "application/json"},
                              connect_timeout=self.timeout_seconds, request_timeout=self.timeout_seconds,
                              follow_redirects=False)
        try:
            response: HTTPResponse = await self._http.fetch(request)
        except HTTPClientError as exc:
            if exc.code in (401, 403):
                return PlatformAnswer(None)
            raise PlatformUnavailable(f"HTTP {exc.code}") from None
        except Exception as exc:  # connection refused, timeout, TLS, DNS: no verdict
            raise PlatformUnavailable(type(exc).__name__) from None
        try:
            body = ujson.loads(response.body or b"")
        except (ValueError, OverflowError, RecursionError):
            raise PlatformUnavailable("the answer is not JSON") from None
        user_id = _pick(body, self.user_id_field)
        if isinstance(user_id, (int, float)) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id or len(user_id) > 200:
            raise PlatformUnavailable(f"the answer has no usable {self.user_id_field!r}")
        username = _pick(body, "username")
        return PlatformAnswer(user_id, username if isinstance(username, str) and username else None)

    async def _answer(self, session_id: str, now: float) -> PlatformAnswer:
        key = session_digest(session_id)
        cached = self._cache.get(key)
        if cached is not None and now < cached.until:
            return cached.answer
        try:
            answer = await self._ask(session_id)
        except PlatformUnavailable as exc:
            self.failures += 1
            log.warning("external session check failed (%s): %s", self.url, exc)
            raise
        if len(self._cache) >= self.max_cached:
            self.purge(now)
            while len(self._cache) >= self.max_cached:  # still full: drop the oldest entries
                del self._cache[next(iter(self._cache))]
        self._cache[key] = _Cached(answer, now + self.cache_seconds)
        return answer

    # ---- SessionStore ---------------------------------------------------------------------
    async def lookup(self, session_id: str, now: float) -> Session | None:
        if not plausible_session_id(session_id):
            return None
        try:
            answer = await self._answer(session_id, now)
        except PlatformUnavailable:
            return None  # no verdict: a new connection is refused (1008), open ones are kept
        if answer.user_id is None:
            return None
        user = User(answer.user_id, answer.username or answer.user_id, False, now)
        return Session(session_id, answer.user_id, now, now, user=user)

    async def still_valid(self, session_id: str, now: float) -> bool | None:
        try:
            return (await self._answer(session_id, now)).user_id is not None
        except PlatformUnavailable:
            return None

    async def create(self, user_id: str, now: float) -> str:
        raise UsageError("sessions are created by the platform (auth.external_session_url), not here")

    async def delete(self, session_id: str) -> Session | None:
        self._cache.pop(session_digest(session_id), None)
        return None

    async def delete_for_user(self, user_id: str) -> int:
        return 0

    def purge(self, now: float) -> int:
        stale = [key for key, cached in self._cache.items() if cached.until <= now]
        for key in stale:
            del self._cache[key]
        return len(stale)

    async def purge_expired(self, now: float) -> int:
        return self.purge(now)

    async def close(self) -> None:
        self._http.close()
