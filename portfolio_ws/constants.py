"""The one home of the wire contract's names: channels, event types, codes, close codes and the
close-policy table every client follows.

Everything that appears on the wire as a fixed string is defined here and imported elsewhere.
Defaults for settings live in ``portfolio_ws.settings`` (mirrored by ``config.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final, Literal

# --- channels -------------------------------------------------------------------------------
Channel = Literal["positions", "orders", "account", "trades"]
POSITIONS: Final = "positions"
ORDERS: Final = "orders"
ACCOUNT: Final = "account"
TRADES: Final = "trades"
CHANNELS: Final[tuple[Channel, ...]] = (POSITIONS, ORDERS, ACCOUNT, TRADES)

# --- server message types -------------------------------------------------------------------
POSITION_UPDATE: Final = "position_update"
ORDER_UPDATE: Final = "order_update"
ACCOUNT_UPDATE: Final = "account_update"
TRADE_EXECUTED: Final = "trade_executed"
BATCH: Final = "batch"
SNAPSHOT: Final = "snapshot"
INFO: Final = "info"
ERROR: Final = "error"
PONG: Final = "pong"

# --- client message types -------------------------------------------------------------------
SUBSCRIBE: Final = "subscribe"
UNSUBSCRIBE: Final = "unsubscribe"
PING: Final = "ping"
CLIENT_MESSAGE_TYPES: Final = (SUBSCRIBE, UNSUBSCRIBE, PING)

# --- info codes -----------------------------------------------------------------------------
CONNECTED: Final = "CONNECTED"
SUBSCRIBED: Final = "SUBSCRIBED"
UNSUBSCRIBED: Final = "UNSUBSCRIBED"
RESUMED: Final = "RESUMED"

# --- error codes (the connection stays open) ------------------------------------------------
INVALID_JSON: Final = "INVALID_JSON"
INVALID_MESSAGE: Final = "INVALID_MESSAGE"
UNKNOWN_MESSAGE_TYPE: Final = "UNKNOWN_MESSAGE_TYPE"
SUBSCRIPTION_FAILED: Final = "SUBSCRIPTION_FAILED"
RATE_LIMITED: Final = "RATE_LIMITED"

# --- orders and positions: statuses and sides of the API document ---------------------------
class OrderStatus(StrEnum):
    """An order's status on the wire. A ``StrEnum``: each member is its wire string (``==``, hash,
    ``str()`` and JSON are the string's), so values from JSON compare equal to the members.
    static/app.js repeats the open ones (a test compares them)."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class PositionSide(StrEnum):
    """A position's side; its quantity on the wire is unsigned."""

    LONG = "long"
    SHORT = "short"


# Plain strings, in the API document's order (error messages and docs list them as they are).
ORDER_STATUSES: Final[tuple[str, ...]] = tuple(status.value for status in OrderStatus)
OPEN_ORDER_STATUSES: Final = frozenset({OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.ACCEPTED,
                                        OrderStatus.PARTIALLY_FILLED})
CLOSED_ORDER_STATUSES: Final = frozenset(OrderStatus) - OPEN_ORDER_STATUSES
ORDER_SIDES: Final[tuple[str, ...]] = tuple(side.value for side in OrderSide)
POSITION_SIDES: Final[tuple[str, ...]] = tuple(side.value for side in PositionSide)


class CloseCode(IntEnum):
    """The WebSocket close codes of the protocol (1006 is never sent: it means no close frame arrived)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class CloseCause(StrEnum):
    """Why the server closes a socket: the ``data.code`` of the ``error`` message sent just before
    the close frame. Clients act on this (and the close code), never on the reason text."""

    SERVER_SHUTTING_DOWN = "SERVER_SHUTTING_DOWN"
    HEARTBEAT_TIMEOUT = "HEARTBEAT_TIMEOUT"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"  # never sent: no data before an auth refusal
    SESSION_EXPIRED = "SESSION_EXPIRED"
    CONNECTION_LIMIT = "CONNECTION_LIMIT"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    MESSAGE_TOO_BIG = "MESSAGE_TOO_BIG"                  # Tornado closes first: never sent
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVER_CAPACITY = "SERVER_CAPACITY"
    STREAMING_DISABLED = "STREAMING_DISABLED"
    SLOW_CONSUMER = "SLOW_CONSUMER"
    STALE_CONNECTION_SLOTS = "STALE_CONNECTION_SLOTS"
    INVALID_DATA = "INVALID_DATA"                        # permessage-deflate data that doesn't inflate


CloseAction = Literal["stop", "reconnect", "poll"]
# stop: no delay. backoff: full jitter. backoff_slow: full jitter + Timings.try_again_later.
# poll_retry: poll GET /api/portfolio and try the socket again every Timings.retry_while_polling.
CloseDelay = Literal["none", "backoff", "backoff_slow", "poll_retry"]


@dataclass(frozen=True, slots=True)
class ClosePolicy:
    """What a client does after a close it did not ask for."""

    action: CloseAction
    delay: CloseDelay

    @property
    def reconnect(self) -> bool:
        return self.action != "stop"

    @property
    def poll(self) -> bool:
        return self.action == "poll"


STOP: Final = ClosePolicy("stop", "none")
RECONNECT: Final = ClosePolicy("reconnect", "backoff")
RECONNECT_SLOW: Final = ClosePolicy("reconnect", "backoff_slow")
POLL: Final = ClosePolicy("poll", "poll_retry")

# THE close-policy table (docs/clients.md renders it; clients/js/src/close-policy.js mirrors it and
# tests/unit/portfolio_ws/client/test_close_policy.py checks the mirror in node). Each cause: its close code and policy.
CLOSE_CAUSES: Final[dict[CloseCause, tuple[CloseCode, ClosePolicy]]] = {
    CloseCause.SERVER_SHUTTING_DOWN: (CloseCode.GOING_AWAY, RECONNECT),
    CloseCause.HEARTBEAT_TIMEOUT: (CloseCode.GOING_AWAY, RECONNECT),
    CloseCause.AUTHENTICATION_REQUIRED: (CloseCode.POLICY_VIOLATION, STOP),
    CloseCause.SESSION_EXPIRED: (CloseCode.POLICY_VIOLATION, STOP),
    CloseCause.CONNECTION_LIMIT: (CloseCode.POLICY_VIOLATION, POLL),
    CloseCause.RATE_LIMIT_EXCEEDED: (CloseCode.POLICY_VIOLATION, STOP),
    CloseCause.MESSAGE_TOO_BIG: (CloseCode.MESSAGE_TOO_BIG, STOP),
    CloseCause.INTERNAL_ERROR: (CloseCode.INTERNAL_ERROR, RECONNECT),
    CloseCause.SERVER_CAPACITY: (CloseCode.TRY_AGAIN_LATER, RECONNECT_SLOW),
    CloseCause.STREAMING_DISABLED: (CloseCode.TRY_AGAIN_LATER, POLL),
    CloseCause.SLOW_CONSUMER: (CloseCode.TRY_AGAIN_LATER, RECONNECT_SLOW),
    CloseCause.STALE_CONNECTION_SLOTS: (CloseCode.TRY_AGAIN_LATER, RECONNECT_SLOW),
    CloseCause.INVALID_DATA: (CloseCode.INVALID_PAYLOAD, STOP),
}
# A close without a cause message (or with a cause this table doesn't know, or whose close code
# differs): by its code alone. A 1008 without a cause is an authentication refusal, the one policy
# close sent with no message first. Codes not listed (4000 of a client's own timeout, ...): RECONNECT.
CLOSE_CODES: Final[dict[CloseCode, ClosePolicy]] = {
    CloseCode.NORMAL_CLOSURE: STOP,
    CloseCode.GOING_AWAY: RECONNECT,
    CloseCode.ABNORMAL_CLOSURE: RECONNECT,
    CloseCode.INVALID_PAYLOAD: STOP,
    CloseCode.POLICY_VIOLATION: STOP,
    CloseCode.MESSAGE_TOO_BIG: STOP,
    CloseCode.INTERNAL_ERROR: RECONNECT,
    CloseCode.TRY_AGAIN_LATER: RECONNECT_SLOW,
}


def close_policy(code: int, cause: str | None = None) -> ClosePolicy:
    """The table's answer for a close with ``code``, after an ``error`` whose ``data.code`` was ``cause``."""
    known = _CAUSES.get(cause) if cause is not None else None
    if known is not None and known[0] == code:
        return known[1]
    return _CODES.get(code, RECONNECT)


_CAUSES: Final[dict[str, tuple[CloseCode, ClosePolicy]]] = {str(k): v for k, v in CLOSE_CAUSES.items()}
_CODES: Final[dict[int, ClosePolicy]] = {int(k): v for k, v in CLOSE_CODES.items()}


@dataclass(frozen=True, slots=True)
class Close:
    """A WebSocket close frame the server sends: code and reason, as the client sees them, and the
    cause the server names in an ``error`` message first (None: no message, e.g. auth refusals)."""

    code: int
    reason: str
    cause: CloseCause | None = None

    @property
    def client_should_reconnect(self) -> bool:
        return close_policy(self.code, self.cause).reconnect


NORMAL_CLOSURE: Final = CloseCode.NORMAL_CLOSURE
GOING_AWAY: Final = CloseCode.GOING_AWAY
INVALID_PAYLOAD: Final = CloseCode.INVALID_PAYLOAD
POLICY_VIOLATION: Final = CloseCode.POLICY_VIOLATION
MESSAGE_TOO_BIG: Final = CloseCode.MESSAGE_TOO_BIG
INTERNAL_ERROR: Final = CloseCode.INTERNAL_ERROR
TRY_AGAIN_LATER: Final = CloseCode.TRY_AGAIN_LATER

# The reasons are the API document's and stay as they are; only the cause is for programs.
AUTH_REQUIRED: Final = Close(POLICY_VIOLATION, "Authentication required", CloseCause.AUTHENTICATION_REQUIRED)
SESSION_EXPIRED: Final = Close(POLICY_VIOLATION, "Session expired", CloseCause.SESSION_EXPIRED)
RATE_LIMIT_EXCEEDED: Final = Close(POLICY_VIOLATION, "Rate limit exceeded", CloseCause.RATE_LIMIT_EXCEEDED)
# Sent by Tornado itself (websocket_max_message_size) before the message is buffered; its wording.
MESSAGE_TOO_BIG_CLOSE: Final = Close(MESSAGE_TOO_BIG, "message too big", CloseCause.MESSAGE_TOO_BIG)
SERVER_CAPACITY: Final = Close(TRY_AGAIN_LATER, "Server capacity reached - try again later",
                               CloseCause.SERVER_CAPACITY)
STREAMING_DISABLED: Final = Close(TRY_AGAIN_LATER, "Realtime streaming disabled", CloseCause.STREAMING_DISABLED)
SLOW_CONSUMER: Final = Close(TRY_AGAIN_LATER, "Slow consumer", CloseCause.SLOW_CONSUMER)
# Cluster mode: over the per-user limit, but some slots may be a stopped process's (slots/redis.py).
STALE_CONNECTION_SLOTS: Final = Close(TRY_AGAIN_LATER, "Connection limit reached, possibly by a stopped "
                                      "server's connections - try again later", CloseCause.STALE_CONNECTION_SLOTS)
SERVER_SHUTTING_DOWN: Final = Close(GOING_AWAY, "Server shutting down", CloseCause.SERVER_SHUTTING_DOWN)
# A peer silent (no pong, no message) past the heartbeat limit: 1001 so live-but-slow clients reconnect.
HEARTBEAT_TIMEOUT: Final = Close(GOING_AWAY, "Heartbeat timeout", CloseCause.HEARTBEAT_TIMEOUT)
INTERNAL_ERROR_CLOSE: Final = Close(INTERNAL_ERROR, "Internal server error", CloseCause.INTERNAL_ERROR)
# permessage-deflate data that does not inflate: a client bug, so no reconnect.
INVALID_DATA: Final = Close(INVALID_PAYLOAD, "Invalid compressed data", CloseCause.INVALID_DATA)
# Causes the server never announces: an auth refusal sends no data (PROTOCOL.md), and Tornado
# closes 1009 itself before the message reaches us.
UNANNOUNCED_CAUSES: Final = frozenset({CloseCause.AUTHENTICATION_REQUIRED, CloseCause.MESSAGE_TOO_BIG})


def user_limit_close(limit: int) -> Close:
    """The close sent to a user's connection beyond the per-user limit."""
    return Close(POLICY_VIOLATION, f"Maximum connections exceeded ({limit} per user)", CloseCause.CONNECTION_LIMIT)


# --- HTTP ------------------------------------------------------------------------------------
SESSION_COOKIE: Final = "session"
WEBSOCKET_PATH: Final = "/ws/portfolio"
