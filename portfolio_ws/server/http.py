"""The HTTP endpoints: login/logout/me, portfolio (REST fallback), health, admin stats.

Every response is JSON; every error is ``{"error": {"code", "message"}}`` with a fitting status.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Callable, Protocol, Sequence

import ujson
from tornado.web import HTTPError

from .. import constants as c
from ..auth.hashqueue import HashQueue, HashQueueFull
from ..auth.sessions import SessionStore
from ..auth.throttle import Blocked, LoginThrottle
from ..auth.users import User, UserStoreBase
from ..core import jsontext, wire
from ..cluster.equity import RedisEquityHistory
from ..core.equity import EquityHistory
from .admin import AdminReport
from .headers import Hardened, InvalidField
from .peers import TrustedProxies, origin_allowed
from .. import market_calendar  # the NYSE calendar (sessions, holidays, early closes)

log = logging.getLogger("portfolio_ws.http")

MAX_LOGIN_BODY = 4096
LOGIN_FIELDS = ("username", "password")


class Stream(Protocol):
    """What the HTTP endpoints use of the stream (the service)."""

    stopping: bool

    @property
    def enabled(self) -> bool: ...

    def end_session(self, session_id: str) -> None: ...

    def portfolio(self, user_id: str) -> tuple[int, dict[str, Any]]: ...

    async def user_ready(self, user_id: str) -> None: ...


class ApiHandler(Hardened):
    """Every endpoint can tell who is asking (``session_user``); each subclass's ``initialize``
    takes the few other things it uses."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float]) -> None:
        self.sessions = sessions
        self.users = users
        self.clock = clock
        self.session_id: str | None = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.finish(ujson.dumps(body, ensure_ascii=False, escape_forward_slashes=False))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # A 4xx is the client's routine business (no session yet, a wrong password): the access log
        # has it at INFO and the handlers log what an operator must see. Tornado would add a WARNING.
        if isinstance(value, HTTPError) and value.status_code < 500:
            return
        super().log_exception(typ, value, tb)

    async def session_user(self) -> User | None:
        cookie = self.get_cookie(c.SESSION_COOKIE)
        if not cookie:
            return None
        session = await self.sessions.lookup(cookie, self.clock())
        if session is None:
            return None
        self.session_id = cookie
        return session.user or await self.users.get_async(session.user_id)

    async def require_user(self) -> User:
        user = await self.session_user()
        if user is None:
            raise HTTPError(401, "Authentication required", reason="Unauthorized")
        return user

    def json_body(self, fields: Sequence[str]) -> dict[str, Any]:
        """The body's JSON object, holding no field but ``fields`` (an unknown one, e.g. a misspelt
        optional field, is refused 400 naming it rather than silently dropped)."""
        if len(self.request.body) > MAX_LOGIN_BODY:
            raise HTTPError(413, "Request body too large", reason="Payload Too Large")
        try:
            body = jsontext.loads(self.request.body or b"")
        except jsontext.NotJson as exc:
            raise HTTPError(400, f"Body must be a JSON object: {exc}", reason="Invalid JSON") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "Body must be a JSON object", reason="Invalid JSON")
        if not encodable(body):  # a lone surrogate ("\ud800") can't become UTF-8 for the store
            raise HTTPError(400, "Strings must be valid Unicode (no lone surrogates)", reason="Invalid JSON")
        unknown = sorted(name for name in body if name not in fields)
        if unknown:
            raise InvalidField(unknown[0], f"{unknown[0][:64]!r} is not a field of this request "
                                           f"(it takes {', '.join(fields)})")
        return body


def encodable(value: Any) -> bool:
    """Every string in a parsed JSON value (keys too) can be encoded as UTF-8. Iterative: nesting
    as deep as the parser allows can't exhaust the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


class StreamHandler(ApiHandler):
    """An endpoint that reads or changes the stream's state."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   stream: Stream) -> None:
        super().initialize(sessions, users, clock)
        self.stream = stream


class SessionChangeHandler(StreamHandler):
    """Login and logout: they start and end sessions, and end the sockets of an ended session."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   stream: Stream, external: bool) -> None:
        """``external``: sessions come from the platform (``auth.external_session_url``)."""
        super().initialize(sessions, users, clock, stream)
        self.external = external

    def refuse_when_external(self) -> None:
        """With external sessions, the platform logs users in and out; these endpoints don't exist."""
        if self.external:
            raise HTTPError(404, "Sessions come from the platform (auth.external_session_url): log in there",
                            reason="Not Found")


class LoginHandler(SessionChangeHandler):
    """Rules kept (docs/reliability.md, "Login limits"): a JSON body only (a form post from another
    site is refused, 415) and, when the browser names its Origin, an allowed one (403): no login
    CSRF. Limits are counted before the password is checked, the check waits for a bounded queue."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   stream: Stream, external: bool, throttle: LoginThrottle, hash_queue: HashQueue,
                   proxies: TrustedProxies, allowed_origins: Sequence[str]) -> None:
        super().initialize(sessions, users, clock, stream, external)
        self.throttle = throttle
        self.hash_queue = hash_queue
        self.proxies = proxies
        self.allowed_origins = allowed_origins

    async def post(self) -> None:
        self.refuse_when_external()
        origin = self.request.headers.get("Origin")
        if origin is not None and not origin_allowed(origin, self.request.headers.get("Host", ""),
                                                 self.allowed_origins):
            raise HTTPError(403, "Logins from this origin are not allowed", reason="Forbidden")
        content_type = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise HTTPError(415, "The body must be JSON (Content-Type: application/json)",
                            reason="Unsupported Media Type")
        body = self.json_body(LOGIN_FIELDS)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not username:
            raise HTTPError(400, "username is required and must be a non-empty string", reason="Invalid Request")
        if not isinstance(password, str) or not password:
            raise HTTPError(400, "password is required and must be a non-empty string", reason="Invalid Request")
        address = self.proxies.client_address(self.request.remote_ip, self.request.headers)
        try:
            attempt = await self.throttle.begin(username, address, self.clock())
        except Exception:  # the shared counts can't be read (Redis down): refuse rather than count nothing
            log.exception("login refused: the login throttle is unavailable")
            return self._refuse(503, 5, "SERVICE_UNAVAILABLE", "Logins are unavailable; try again later")
        if isinstance(attempt, Blocked):  # refused before any password check, whatever the password
            log.warning("login rate-limited (per %s) from %s for username %r; retry after %ds", attempt.scope,
                        address, username[:64], attempt.retry_after)
            return self._refuse(429, attempt.retry_after, "TOO_MANY_REQUESTS", "Too many failed logins; try again later")
        if attempt.delay:  # many attempts at this username lately: slowed, never locked
            await asyncio.sleep(attempt.delay)
        try:
            user = await self.users.authenticate_async(username, password, self.hash_queue)
        except HashQueueFull as full:
            await self.throttle.refund(attempt)
            log.warning("login refused from %s: password checks queue full", address)
            return self._refuse(503, full.retry_after, "SERVICE_UNAVAILABLE", "Too many logins at once; try again shortly")
        if user is None:
            # The name tried (repr: no line breaks from the client), never the password.
            log.warning("login failed for username %r from %s", username[:64], address)
            raise HTTPError(401, "Invalid username or password", reason="Unauthorized")
        await self.throttle.succeeded(attempt)
        old = self.get_cookie(c.SESSION_COOKIE)
        if old:  # a new session id on every login; the old one ends, and its sockets with it
            await self.sessions.delete(old)
            self.stream.end_session(old)
        session_id = await self.sessions.create(user.user_id, self.clock())
        self.set_cookie(c.SESSION_COOKIE, session_id, path="/", httponly=True, samesite="Lax",
                        secure=self.request.protocol == "https")
        log.info("login user=%s from %s", user.user_id, address)
        self.write_json(200, {"userId": user.user_id, "username": user.username})

    def _refuse(self, status: int, retry_after: int, code: str, message: str) -> None:
        self.set_header("Retry-After", str(retry_after))  # an HTTPError would clear headers
        self.write_json(status, {"error": {"code": code, "message": message}})


class LogoutHandler(SessionChangeHandler):
    async def post(self) -> None:
        self.refuse_when_external()
        cookie = self.get_cookie(c.SESSION_COOKIE)
        ended = False
        if cookie:
            ended = await self.sessions.delete(cookie) is not None
            self.stream.end_session(cookie)
        log.info("logout from %s (%s)", self.request.remote_ip, "session ended" if ended else "no live session")
        self.clear_cookie(c.SESSION_COOKIE, path="/")
        self.write_json(200, {"loggedOut": ended})


class MeHandler(ApiHandler):
    async def get(self) -> None:
        user = await self.require_user()
        self.write_json(200, {"userId": user.user_id, "username": user.username, "isAdmin": user.is_admin})


class EquityHandler(ApiHandler):
    """Today's equity, a point a minute since the first account update of the session, and the
    session's open and close (the dashboard's chart spans them)."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   equity: EquityHistory | RedisEquityHistory) -> None:
        super().initialize(sessions, users, clock)
        self.equity = equity

    async def get(self) -> None:
        user = await self.require_user()
        day, points = await self.equity.read(user.user_id)
        session = market_calendar.session_on(day) if day is not None else None
        self.write_json(200, {
            "userId": user.user_id,
            "sessionOpen": wire.epoch_timestamp(session.open) if session else None,
            "sessionClose": wire.epoch_timestamp(session.close) if session else None,
            "points": [{"t": wire.timestamp(at), "equity": wire.money(value)}
                       for at, value in points],
        })


class SessionHandler(ApiHandler):
    """Whether this browser is logged in, always 200: the dashboard asks on every load, and a 401
    there would be a console error and a log line for the most ordinary answer."""

    async def get(self) -> None:
        user = await self.session_user()
        if user is None:
            self.write_json(200, {"loggedIn": False})
            return
        self.write_json(200, {"loggedIn": True, "userId": user.user_id, "username": user.username,
                              "isAdmin": user.is_admin})


class PortfolioHandler(StreamHandler):
    async def get(self) -> None:
        user = await self.require_user()
        await self.stream.user_ready(user.user_id)  # cluster mode: the state every node has
        seq, data = self.stream.portfolio(user.user_id)
        now = self.clock()
        self.write_json(200, {"type": c.SNAPSHOT, "timestamp": wire.epoch_timestamp(now),
                              "userId": user.user_id, "seq": seq, "data": data})


class HealthHandler(StreamHandler):
    def get(self) -> None:
        enabled = self.stream.enabled
        self.write_json(200, {"status": "ok" if not self.stream.stopping else "stopping",
                              "streaming": "enabled" if enabled else "disabled",
                              "features": {"realtimePortfolio": enabled}})


class AdminHandler(ApiHandler):
    """Operators only: ``Authorization: Bearer <auth.admin_token>`` or an admin's session."""

    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   admin_token: str, report: AdminReport) -> None:
        super().initialize(sessions, users, clock)
        self.admin_token = admin_token
        self.report = report

    async def prepare(self) -> None:
        token = self.admin_token
        header = self.request.headers.get("Authorization", "")
        if token and header.startswith("Bearer "):
            if hmac.compare_digest(header[7:].encode(), token.encode()):
                return
            raise HTTPError(401, "Invalid admin token", reason="Unauthorized")
        user = await self.require_user()
        if not user.is_admin:
            raise HTTPError(403, "Admin access required", reason="Forbidden")


class AdminStatsHandler(AdminHandler):
    async def get(self) -> None:
        self.write_json(200, await self.report.read())


class NotFoundHandler(ApiHandler):
    def prepare(self) -> None:
        raise HTTPError(404, "No such endpoint", reason="Not Found")
