"""The HTTP half of the client: log in, read the portfolio (the REST fallback), build URLs."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ujson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from .. import constants as c
from .errors import ClientError, LoginFailed
from .events import Snapshot, snapshot

JSON = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class Login:
    session_id: str
    user_id: str
    username: str


def base_url(url: str) -> str:
    """``http(s)://host:port`` from a server URL (``ws(s)://`` accepted too); no trailing slash."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def websocket_url(url: str) -> str:
    parts = urlsplit(base_url(url))
    return urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, c.WEBSOCKET_PATH, "", ""))


def cookie_header(session_id: str) -> dict[str, str]:
    return {"Cookie": f"{c.SESSION_COOKIE}={session_id}"}


def _error_message(response: HTTPResponse) -> str:
    try:
        return str(ujson.loads(response.body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.code}"


async def _fetch(request: HTTPRequest) -> HTTPResponse:
    try:
        return await AsyncHTTPClient().fetch(request)
    except HTTPClientError as exc:
        if exc.response is None:  # 599: timeout or connection error
            raise ClientError(f"{request.method} {request.url}: {exc.message}") from None
        return exc.response
    except OSError as exc:
        raise ClientError(f"cannot reach {request.url}: {exc.strerror or exc}") from None


def _session_cookie(response: HTTPResponse) -> str | None:
    for header in response.headers.get_list("Set-Cookie"):
        try:
            jar: SimpleCookie = SimpleCookie(header)
        except CookieError:
            continue
        if c.SESSION_COOKIE in jar and jar[c.SESSION_COOKIE].value:
            return jar[c.SESSION_COOKIE].value
    return None


async def login(url: str, username: str, password: str, timeout: float = 10.0) -> Login:
    """``POST /api/auth/login``. Raises ``LoginFailed`` on bad credentials, ``ClientError`` otherwise."""
    request = HTTPRequest(base_url(url) + "/api/auth/login", method="POST", headers=JSON,
                          body=ujson.dumps({"username": username, "password": password}),
                          connect_timeout=timeout, request_timeout=timeout)
    response = await _fetch(request)
    if response.code == 401:
        raise LoginFailed(_error_message(response))
    if response.code != 200:
        raise ClientError(f"login: {_error_message(response)}")
    session_id = _session_cookie(response)
    if session_id is None:
        raise ClientError("login: the server set no session cookie")
    body: dict[str, Any] = ujson.loads(response.body)
    return Login(session_id, body["userId"], body["username"])


async def fetch_portfolio(url: str, session_id: str, timeout: float = 10.0) -> Snapshot:
    """``GET /api/portfolio``: the full state, as a ``Snapshot`` of every channel."""
    request = HTTPRequest(base_url(url) + "/api/portfolio", headers={**JSON, **cookie_header(session_id)},
                          connect_timeout=timeout, request_timeout=timeout)
    response = await _fetch(request)
    if response.code == 401:
        raise LoginFailed(_error_message(response))
    if response.code != 200:
        raise ClientError(f"portfolio: {_error_message(response)}")
    message = ujson.loads(response.body)
    return snapshot(message["seq"], message["data"])
