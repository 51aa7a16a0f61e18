"""An engine driver for the core tests: a StreamCore over default settings, its frames parsed per
connection. Time is a float passed in, never read from a clock; events come from tests/builders.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import ujson

from portfolio_ws.constants import Close
from portfolio_ws.core.events import Event
from portfolio_ws.core.output import Closing, Outgoing
from portfolio_ws.core.stream import StreamCore
from portfolio_ws.settings import Settings
from tests.builders import NOW

DATA_TYPES = {"position_update", "order_update", "account_update", "trade_executed", "batch", "snapshot"}
CONTROL_TYPES = {"info", "error", "pong"}


# ---- the engine ---------------------------------------------------------------------------------
def make_core(now: float = NOW, **sections: dict[str, Any]) -> StreamCore:
    """A StreamCore over default settings, with ``streaming={...}``/``limits={...}``/``recovery={...}``
    replacing individual fields."""
    s = Settings()
    streaming = replace(s.streaming, **sections.get("streaming", {}))
    limits = replace(s.limits, **sections.get("limits", {}))
    recovery = replace(s.recovery, **sections.get("recovery", {}))
    return StreamCore(streaming, limits, recovery, now)


class Sent:
    """What one ``data_to_send()`` produced, parsed: frames per connection, closes, raw outputs."""

    def __init__(self, outputs: list[Outgoing | Closing]) -> None:
        self.outputs = outputs
        self.frames = [o for o in outputs if isinstance(o, Outgoing)]
        self.closes: dict[int, Close] = {o.connection: o.close for o in outputs if isinstance(o, Closing)}
        self.by_conn: dict[int, list[dict[str, Any]]] = {}
        for o in self.frames:
            msg = ujson.loads(o.frame)
            for conn in o.connections:
                self.by_conn.setdefault(conn, []).append(msg)

    def to(self, conn: int) -> list[dict[str, Any]]:
        return self.by_conn.get(conn, [])

    def types(self, conn: int) -> list[str]:
        return [m["type"] for m in self.to(conn)]

    def data(self, conn: int) -> list[dict[str, Any]]:
        return [m for m in self.to(conn) if m["type"] in DATA_TYPES]


def drain(core: StreamCore) -> Sent:
    return Sent(core.data_to_send())


def send(core: StreamCore, conn: int, message: Any, now: float = NOW) -> Sent:
    core.receive_frame(conn, message if isinstance(message, (str, bytes)) else ujson.dumps(message), now)
    return drain(core)


def connect(core: StreamCore, user: str = "u1", *channels: str, session: str | None = "s1",
            now: float = NOW) -> int:
    """Open a connection and subscribe it (if channels are given); drains everything it was sent."""
    conn = core.open(user, session, now)
    sent = drain(core)
    assert sent.types(conn) == ["info"] and not sent.closes, sent.outputs
    if channels:
        send(core, conn, {"type": "subscribe", "channels": list(channels)}, now)
    return conn


def publish(core: StreamCore, *events: Event, now: float = NOW) -> list[int]:
    return [core.receive_event(e, now) for e in events]
