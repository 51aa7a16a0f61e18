"""The admin report: what ``GET /api/admin/websocket-stats`` and ``GET /metrics`` both read.

One home for the figures an operator sees: the engine's counters (``core/report.py``), the feed's
health as the guard reports it (a feed whose ``health()`` raises, or whose task died, shows
disconnected, never an error), the bus's own health, which node answered, in a cluster every
node's figures (``cluster/stats.py``), the Redis Streams ingest's counters (``ingest/streams.py``),
and the platform API's (``PlatformCounters``: publishes and the routes beside it).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..bus import EventBus
from ..cluster.stats import ClusterStats
from ..core.health import FeedHealth
from ..core.report import admin_report
from ..core.stream import StreamCore
from ..feeds.guard import FeedGuard
from ..ingest.streams import StreamIngest


@dataclass
class PlatformCounters:
    """What the server-to-server routes (``/api/v1/...``) did since this process started: requests
    answered, those refused whole with a 4xx, and the published items by outcome. ``accepted``
    counts items delivered now; a ``duplicate`` (an id the user already had) is not among them."""

    requests: int = 0
    clientErrors: int = 0  # noqa: N815 (the admin document's names)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class AdminReport:
    def __init__(self, core: StreamCore, feed: FeedGuard, bus: EventBus, clock: Callable[[], float],
                 silence_offline_seconds: float) -> None:
        self.core = core
        self.feed = feed
        self.bus = bus
        self.clock = clock
        self.silence = silence_offline_seconds
        self.feed_started_at = clock()  # reset when the feed starts
        # In a cluster, every node's figures in Redis (set by the service when clustered).
        self.cluster: ClusterStats | None = None
        # Redis Streams ingest, when enabled (set by the service).
        self.ingest: StreamIngest | None = None
        self.platform = PlatformCounters()  # POST /api/v1/publish and the user routes

    def feed_health(self) -> FeedHealth:
        return self.feed.health()

    def bus_health(self) -> dict[str, Any] | None:
        return self.bus.health()

    def snapshot(self) -> dict[str, Any]:
        """This node's report."""
        bus = self.bus.health()
        report = admin_report(self.core, self.feed.health(), self.feed_started_at, self.silence, self.clock(),
                              bus_connected=bus is None or bool(bus.get("connected", True)))
        report["feed"]["errors"] = self.feed.errors  # feed failures and events it sent that were dropped
        # Which process answered: one of several nodes or workers (cluster mode, serve --workers).
        report["node"] = {"id": self.bus.node_id, "pid": os.getpid()}
        if bus is not None:
            # Events the core dropped as stale (an offset at or below the user's): with the bus's own
            # drop counters, every event not passed on is counted somewhere.
            report["bus"] = {**bus, "stale": self.core.stats.stale_events}
        if self.ingest is not None:
            report["ingest"] = self.ingest.stats()
        report["publish"] = self.platform.as_dict()
        return report

    async def read(self) -> dict[str, Any]:
        """This node's report and, in a cluster, ``cluster``: every node's figures and their sum."""
        report = self.snapshot()
        if self.cluster is not None:
            report["cluster"] = await self.cluster.read(report)
        return report
