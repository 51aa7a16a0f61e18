"""The admin stats document (``GET /api/admin/websocket-stats``), built from the engine's counters."""

from __future__ import annotations

from typing import Any

from .health import FeedHealth
from . import wire
from .stats import iso_or_none, percent_text, uptime
from .stream import StreamCore


def admin_report(core: StreamCore, feed: FeedHealth, feed_started_at: float, silence: float,
                 now: float, bus_connected: bool = True) -> dict[str, Any]:
    stats = core.stats
    hub = core.hub
    active = len(hub.connections)
    status = stats.status(enabled=core.enabled, feed=feed, feed_started_at=feed_started_at,
                          silence=silence, active=active, now=now, bus_connected=bus_connected)
    ages = [now - conn.opened_at for conn in hub.connections.values()]
    return {
        "status": status,
        "enabled": core.enabled,
        "activeConnections": active,
        "totalMessagesDelivered": stats.messages_delivered,
        "totalEventsEmitted": stats.events_emitted,
        "totalDisconnects": stats.disconnects,
        "totalReconnects": stats.reconnects,
        "totalRejectedConnections": stats.rejected_connections,
        "totalRateLimited": stats.rate_limited,
        "totalControlMessages": stats.control_messages,
        "connectionsByUser": hub.counts_by_user(),
        "performance": {
            "batchEfficiency": percent_text(stats.batch_efficiency()),
            "disconnectRatePerMinute": f"{stats.disconnect_rate_per_minute(now):.2f}",
            "avgConnectionDurationSeconds": round(stats.average_connection_seconds(ages), 1),
            "latencyMs": stats.latency_ms(),
            "tickMs": stats.tick_ms(),
        },
        "uptime": uptime(now - stats.started_at),
        "limits": {
            "connectionsPerUser": core.limits.connections_per_user,
            "totalConnections": core.limits.total_connections,
            "messagesPerSecond": wire.plain_number(core.limits.messages_per_second),
            "maxMessageBytes": core.streaming.max_message_bytes,
            "batchWindowMs": core.streaming.batch_window_ms,
        },
        "feed": {
            "source": feed.source,
            "connected": feed.connected,
            "lastEventAt": iso_or_none(feed.last_event_at),
            "marketOpen": feed.market_open,
            "reconnects": feed.reconnects,
            "details": {**feed.details, "impaired": feed.impaired} if feed.impaired else feed.details,
        },
        "timestamp": wire.epoch_timestamp(now),
    }
