"""The one home of the wire contract's names: channels, event types, codes, close reasons.

Everything that appears on the wire as a fixed string is defined here and imported elsewhere.
Defaults for settings live in ``portfolio_ws.settings`` (mirrored by ``config.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
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

# --- order statuses of the API document ------------------------------------------------------
OrderStatus = Literal[
    "pending_new", "new", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired"
]
ORDER_STATUSES: Final[tuple[OrderStatus, ...]] = (
    "pending_new", "new", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired",
)
OPEN_ORDER_STATUSES: Final = frozenset({"pending_new", "new", "accepted", "partially_filled"})
CLOSED_ORDER_STATUSES: Final = frozenset({"filled", "canceled", "rejected", "expired"})
OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop", "stop_limit"]
PositionSide = Literal["long", "short"]


# --- close codes and reasons -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Close:
    """A WebSocket close frame the server sends: code and reason, as the client sees them."""

    code: int
    reason: str

    @property
    def client_should_reconnect(self) -> bool:
        return self.code in RECONNECTABLE_CLOSE_CODES


NORMAL_CLOSURE: Final = 1000
GOING_AWAY: Final = 1001
POLICY_VIOLATION: Final = 1008
MESSAGE_TOO_BIG: Final = 1009
INTERNAL_ERROR: Final = 1011
TRY_AGAIN_LATER: Final = 1013
RECONNECTABLE_CLOSE_CODES: Final = frozenset({GOING_AWAY, INTERNAL_ERROR, TRY_AGAIN_LATER})

AUTH_REQUIRED: Final = Close(POLICY_VIOLATION, "Authentication required")
SESSION_EXPIRED: Final = Close(POLICY_VIOLATION, "Session expired")
RATE_LIMIT_EXCEEDED: Final = Close(POLICY_VIOLATION, "Rate limit exceeded")
# Sent by Tornado itself (websocket_max_message_size) before the message is buffered; its wording.
MESSAGE_TOO_BIG_CLOSE: Final = Close(MESSAGE_TOO_BIG, "message too big")
SERVER_CAPACITY: Final = Close(TRY_AGAIN_LATER, "Server capacity reached - try again later")
STREAMING_DISABLED: Final = Close(TRY_AGAIN_LATER, "Realtime streaming disabled")
SLOW_CONSUMER: Final = Close(TRY_AGAIN_LATER, "Slow consumer")
SERVER_SHUTTING_DOWN: Final = Close(GOING_AWAY, "Server shutting down")
# A peer silent (no pong, no message) past the heartbeat limit: 1001 so live-but-slow clients reconnect.
HEARTBEAT_TIMEOUT: Final = Close(GOING_AWAY, "Heartbeat timeout")
INTERNAL_ERROR_CLOSE: Final = Close(INTERNAL_ERROR, "Internal server error")


def user_limit_close(limit: int) -> Close:
    """The close sent to a user's connection beyond the per-user limit."""
    return Close(POLICY_VIOLATION, f"Maximum connections exceeded ({limit} per user)")


# --- HTTP ------------------------------------------------------------------------------------
SESSION_COOKIE: Final = "session"
WEBSOCKET_PATH: Final = "/ws/portfolio"
