"""The exception tree: one root, split into "you misused me" and "the peer misbehaved".

Errors that close a WebSocket carry the ``Close`` (code and reason) the client must see.
"""

from __future__ import annotations

from .constants import Close


class PortfolioWsError(Exception):
    """Root of every error portfolio-ws raises on purpose."""


class ConfigError(PortfolioWsError):
    """A setting is missing, mistyped or out of range. ``key`` names it (``limits.total_connections``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class UsageError(PortfolioWsError):
    """The caller (our own code or an operator) used an API wrongly."""


class InvalidEvent(PortfolioWsError):
    """A feed produced an event that cannot be represented (wrong type, non-finite number...)."""


class ProtocolError(PortfolioWsError):
    """The WebSocket peer broke the protocol in a way that closes the connection."""

    def __init__(self, close: Close) -> None:
        super().__init__(f"{close.code} {close.reason}")
        self.close = close


class AuthError(PortfolioWsError):
    """Credentials or a session did not check out. The message is safe to show to the client."""
