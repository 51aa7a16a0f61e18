"""The client's errors, under the project's one root (``PortfolioWsError``)."""

from __future__ import annotations

from ..constants import Close
from ..errors import PortfolioWsError


class ClientError(PortfolioWsError):
    """The server could not be used: unreachable, or it answered something unexpected."""


class LoginFailed(ClientError):
    """The server refused the credentials or the session (HTTP 401). Log in again with others."""


class StreamClosed(ClientError):
    """The server closed the stream for good (1008, 1009, 1000; or 401 while polling): the client
    does not reconnect. ``close`` is the code and reason the server gave."""

    def __init__(self, close: Close) -> None:
        super().__init__(f"{close.code} {close.reason}".strip())
        self.close = close
