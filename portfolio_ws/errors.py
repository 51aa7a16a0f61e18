"""The exception tree: one root, split into "you misused me" (``UsageError``, ``ConfigError``) and
"the input was bad" (``InvalidEvent``). What closes a WebSocket is a ``constants.Close`` the core
decides, not an exception.
"""

from __future__ import annotations


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


