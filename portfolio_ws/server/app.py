"""The app factory: routes and Tornado settings. Dependencies go to handlers via ``initialize``."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from ssl import SSLContext
from typing import Callable

import tornado.web
from tornado.log import access_log

from .. import constants as c
from ..auth.linked import unlink_user
from .accept import EdgeServer
from .headers import Hardened, NotFoundPage
from .http import (AdminStatsHandler, EquityHandler, HealthHandler, LoginHandler, LogoutHandler, MeHandler,
                   NotFoundHandler, PortfolioHandler, SessionHandler)
from . import http, ws
from .metrics import MetricsHandler, metrics_registry
from .parts import HttpParts
from .platform import USERS_PATH, UserSockets, UserHandler, UsersHandler
from .publish import MAX_BODY_BYTES as PUBLISH_BODY_BYTES, PATH as PUBLISH_PATH, PublishHandler
from .service import Service
from .sync import PATH as SYNC_PATH, SyncHandler, is_sync_path
from .ws import PortfolioSocket

STATIC = Path(__file__).resolve().parent.parent / "static"
APIDOCS = Path(__file__).resolve().parent.parent / "apidocs"
# The stream client lives in the npm package (clients/js/src); static/ links to it in a checkout
# (a wheel holds copies). Tornado serves a link's target only from directories named here.
CLIENT_JS = (STATIC / "portfolio-stream.js").resolve().parent
SYMLINK_DIRS = [str(STATIC), str(CLIENT_JS)]


# Routes that take a request body (a login's JSON). Every other route reads none: a stray small one
# still gets the route's own answer (405, 404...), anything larger is refused 413 before it is read
# (server/accept.py).
BODY_ROUTES = frozenset({"/api/auth/login", "/api/auth/logout", USERS_PATH})
NO_BODY_LIMIT = 1024


def body_limit(max_body_bytes: int) -> Callable[[str], int]:
    """Largest request body of a path: ``server.max_body_bytes`` on BODY_ROUTES, the publish route's
    own on it and on a sync's (batches of events, a user's state: server to server), else NO_BODY_LIMIT."""
    def limit(path: str) -> int:
        if path == PUBLISH_PATH or is_sync_path(path):
            return PUBLISH_BODY_BYTES
        return max_body_bytes if path in BODY_ROUTES else min(NO_BODY_LIMIT, max_body_bytes)
    return limit


class Files(Hardened, tornado.web.StaticFileHandler):
    """Files from a folder; a path with a NUL names none (the file system would raise on it)."""

    def parse_url_path(self, url_path: str) -> str:
        if "\x00" in url_path:
            raise tornado.web.HTTPError(404, "No such file", reason="Not Found")
        return super().parse_url_path(url_path)


class ApiDocHandler(Files):
    """The AsyncAPI (WebSocket) and OpenAPI (HTTP) documents, from ``portfolio_ws/apidocs/``."""

    def get_content_type(self) -> str:
        return "application/yaml; charset=utf-8"


class StaticHandler(Files):
    """The dashboard's files, revalidated on every load (ETag) so an upgrade is seen at once."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The access log: 5xx at ERROR, everything else at INFO. Tornado's own puts every 4xx at
    WARNING, so each dashboard load (a 401 while logged out) and each wrong password was a warning."""
    status, request = handler.get_status(), handler.request
    access_log.log(logging.ERROR if status >= 500 else logging.INFO, "%d %s %s (%s) %.2fms", status,
                   request.method, request.uri, request.remote_ip, 1000.0 * request.request_time())


def make_app(service: Service, parts: HttpParts) -> tornado.web.Application:
    """Routes, each handler given what it uses of the service and of ``parts`` (Tornado's
    ``initialize``)."""
    settings = service.settings
    # The service is the stream both kinds of handler see, each through its own Protocol (checked here).
    socket_stream: ws.Stream = service
    http_stream: http.Stream = service
    who = {"sessions": service.sessions, "users": service.users, "clock": service.clock}
    stream = {**who, "stream": http_stream}
    sessions = {**stream, "external": bool(settings.auth.external_session_url)}
    login = {**sessions, "throttle": parts.throttle, "hash_queue": parts.hash_queue,
             "proxies": parts.proxies, "allowed_origins": settings.server.allowed_origins}
    platform = {**who, "keys": parts.publishing.keys, "counters": parts.publishing.counters}
    platform_stream: UserSockets = service
    admin = {**who, "admin_token": settings.auth.admin_token, "report": service.report}
    socket = {"stream": socket_stream, "sessions": service.sessions, "slots": service.slots, "clock": service.clock,
              "settings": settings}
    return tornado.web.Application(
        [
            # A NUL anywhere in the path names no file and no endpoint (the file system would raise).
            (r"(?i).*(?:%00|\x00).*", NotFoundPage),
            (c.WEBSOCKET_PATH, PortfolioSocket, socket),
            (r"/api/auth/login", LoginHandler, login),
            (r"/api/auth/logout", LogoutHandler, sessions),
            (r"/api/auth/me", MeHandler, who),
            (r"/api/auth/session", SessionHandler, who),
            (r"/api/portfolio", PortfolioHandler, stream),
            (r"/api/portfolio/equity", EquityHandler, {**who, "equity": parts.equity}),
            (r"/api/health", HealthHandler, stream),
            (r"/api/admin/websocket-stats", AdminStatsHandler, admin),
            (r"/metrics", MetricsHandler, {**admin, "registry": metrics_registry(service.report)}),
            (PUBLISH_PATH, PublishHandler, {**who, "publishing": parts.publishing}),
            (SYNC_PATH, SyncHandler, {**who, "publishing": parts.publishing}),
            (USERS_PATH, UsersHandler, {**platform, "hash_queue": parts.hash_queue}),
            (USERS_PATH + r"/(user-[0-9a-f]{12})", UserHandler,
             {**platform, "stream": platform_stream, "unlink": partial(unlink_user, settings.auth.database)}),
            (r"/api/docs/(asyncapi\.yaml|openapi\.yaml)", ApiDocHandler, {"path": str(APIDOCS)}),
            (r"/api/.*", NotFoundHandler, who),
            # The dashboard at / (its files under /static/, from static_path below).
            *([(r"/()", StaticHandler, {"path": str(STATIC), "default_filename": "index.html",
                                        "allowed_symlink_directory": SYMLINK_DIRS})]
              if STATIC.is_dir() else []),
        ],
        static_path=str(STATIC) if STATIC.is_dir() else None,
        static_handler_class=StaticHandler,
        static_handler_args={"allowed_symlink_directory": SYMLINK_DIRS},
        websocket_max_message_size=service.settings.streaming.max_message_bytes,
        # Protocol pings are sent by Service._heartbeat_round, not by a Tornado task per socket.
        websocket_ping_interval=None,
        xheaders=False,
        log_function=log_request,
        default_handler_class=NotFoundPage,
    )


def make_parts(service: Service) -> HttpParts:
    """The handlers' parts for ``service``'s settings and bus (the caller closes them after the
    service's shutdown)."""
    offset_of = None if service.bus.holds_state else service.offset
    return HttpParts.build(service.settings, service.bus, offset_of, service.report.platform)


def make_server(service: Service, parts: HttpParts, ssl_options: SSLContext | None = None) -> EdgeServer:
    """The HTTP server of the app, with the accept layer's limits (``server.*`` settings); the
    caller adds the listening sockets (``accept.listen_sockets``)."""
    server = service.settings.server
    return EdgeServer(make_app(service, parts), ssl_options=ssl_options, edge=server,
                      body_limit=body_limit(server.max_body_bytes))
