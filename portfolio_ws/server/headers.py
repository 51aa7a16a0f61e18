"""What every HTTP response carries and what no error response carries: the security headers (the
one home of the Content-Security-Policy), no ``Server`` banner, and error bodies made of the status
alone - never an exception's text or a traceback. Every handler of the app derives from ``Hardened``
(tests/behaviour/server/test_headers.py walks the routes to hold it)."""

from __future__ import annotations

from typing import Any

import ujson
from tornado.web import HTTPError, RequestHandler

# The dashboard loads only its own files (no inline script or style) and talks only to its own origin
# (connect-src 'self' covers ws:/wss: of the same host). No page may frame any response.
CONTENT_SECURITY_POLICY = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def error_body(status_code: int, reason: str, message: str | None = None, field: str | None = None) -> str:
    """``{"error": {"code", "message"}}`` of a status: a handler's own message, else the reason;
    with ``field`` when one field of the request was refused."""
    code = reason.upper().replace(" ", "_")
    error = {"code": code, "message": message or reason, **({"field": field} if field is not None else {})}
    return ujson.dumps({"error": error}, ensure_ascii=False, escape_forward_slashes=False)


class InvalidField(HTTPError):
    """400 ``INVALID_REQUEST`` naming the one field of the body that was refused (``error.field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(400, message, reason="Invalid Request")  # ApiHandler never logs a 4xx (no % formatting)
        self.field = field


class Hardened(RequestHandler):
    """Base of every handler: security headers, no banner, error bodies without exception text."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.clear_header("Server")
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Only the messages of our own HTTPErrors are shown; any other exception (and Tornado's
        # debug traceback page) stays in the log.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, HTTPError) and status_code < 500 else None
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        field = exc.field if isinstance(exc, InvalidField) else None
        self.finish(error_body(status_code, self._reason, message, field))


class NotFoundPage(Hardened):
    """Any path no route matches (Tornado's default would answer its own HTML page)."""

    def prepare(self) -> None:
        raise HTTPError(404, "No such page", reason="Not Found")
