"""``GET /metrics``: the engine's counters in Prometheus text format (prometheus-client), read at
scrape time, so the hot path pays nothing. Operators only, like the admin stats.

One registry per app, built once (``metrics_registry``). The feed and bus health come from the
same ``AdminReport`` as the admin stats (the feed as its guard sees it: a ``health()`` that raises
or a dead feed task reads as disconnected). Delivery latency is a histogram: cumulative bucket
counts add up across workers and nodes, quantiles of recent samples don't.
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..auth.sessions import SessionStore
from ..auth.users import UserStoreBase
from .admin import AdminReport
from .http import AdminHandler

PREFIX = "portfolio_ws_"
INGEST_OUTCOMES = {"read": "read", "published": "published", "duplicates": "duplicates",
                   "deadLettered": "dead_lettered", "claimed": "claimed", "retried": "retried"}
BUS_OUTCOMES = ("published", "delivered", "repaired", "dropped", "deduplicated", "duplicates", "invalid", "stale")


class ReportCollector:
    def __init__(self, report: AdminReport) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        core = self.report.core
        stats = core.stats
        yield GaugeMetricFamily(PREFIX + "active_connections", "Open WebSocket connections",
                                value=len(core.hub.connections))
        yield GaugeMetricFamily(PREFIX + "streaming_enabled", "1 when realtime streaming is on",
                                value=1 if core.enabled else 0)
        counters: tuple[tuple[str, str, int], ...] = (
            ("events_emitted", "Events taken in from the feed", stats.events_emitted),
            ("messages_delivered", "Data messages written to connections", stats.messages_delivered),
            ("control_messages", "info/error/pong/snapshot messages written", stats.control_messages),
            ("disconnects", "Connections closed", stats.disconnects),
            ("reconnects", "Connections of a user within 60 s of one closing", stats.reconnects),
            ("rejected_connections", "Connections refused (auth, limits, disabled)", stats.rejected_connections),
            ("rate_limited_messages", "Client messages over the rate limit", stats.rate_limited),
        )
        for name, doc, count in counters:
            yield CounterMetricFamily(PREFIX + name, doc, value=count)
        yield GaugeMetricFamily(PREFIX + "batch_efficiency_ratio", "Share of messages saved by batching",
                                value=stats.batch_efficiency())
        latency = stats.latency
        yield HistogramMetricFamily(
            PREFIX + "delivery_latency_seconds", "Event received by the server to written to the socket",
            buckets=[("+Inf" if bound == float("inf") else repr(bound), count)
                     for bound, count in latency.cumulative()],
            sum_value=latency.total)
        bus = self.report.bus_health()
        if bus is not None:  # cluster mode: what the Redis bus passed on and every drop, by reason
            outcomes = CounterMetricFamily(PREFIX + "bus_events", "Redis bus events by outcome "
                                           "(published, delivered, repaired; dropped, deduplicated, duplicates, "
                                           "invalid, stale: not passed on)", labels=["outcome"])
            for outcome in BUS_OUTCOMES:
                value = stats.stale_events if outcome == "stale" else bus.get(outcome, 0)
                outcomes.add_metric([outcome], value)
            yield outcomes
        ingest = self.report.ingest
        if ingest is not None:  # Redis Streams ingest: entries by what became of them
            entries = CounterMetricFamily(PREFIX + "ingest_entries", "Redis Streams ingest entries by outcome "
                                          "(read, published, duplicates, dead_lettered, claimed, retried)",
                                          labels=["outcome"])
            for name, value in ingest.counters.items():
                entries.add_metric([INGEST_OUTCOMES[name]], value)
            yield entries
            yield GaugeMetricFamily(PREFIX + "ingest_connected", "1 when the ingest reads its stream",
                                    value=1 if ingest.connected else 0)
        platform = self.report.platform  # POST /api/v1/publish: requests, and items by outcome
        yield CounterMetricFamily(PREFIX + "publish_requests", "Requests to the platform API (/api/v1/...)",
                                  value=platform.requests)
        yield CounterMetricFamily(PREFIX + "publish_client_errors", "Platform API requests refused whole with a 4xx",
                                  value=platform.clientErrors)
        items = CounterMetricFamily(PREFIX + "publish_items", "Published items by outcome (accepted: delivered "
                                    "now; duplicate: an id the user had, not delivered again; rejected)",
                                    labels=["outcome"])
        for outcome, value in (("accepted", platform.accepted), ("duplicate", platform.duplicates),
                               ("rejected", platform.rejected)):
            items.add_metric([outcome], value)
        yield items
        yield GaugeMetricFamily(PREFIX + "feed_connected", "1 when the feed is connected",
                                value=1 if self.report.feed_health().connected else 0)


def metrics_registry(report: AdminReport) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportCollector(report))  # type: ignore[arg-type]
    return registry


class MetricsHandler(AdminHandler):
    def initialize(self, sessions: SessionStore, users: UserStoreBase, clock: Callable[[], float],  # type: ignore[override]
                   admin_token: str, report: AdminReport, registry: CollectorRegistry) -> None:
        super().initialize(sessions, users, clock, admin_token, report)
        self.registry = registry

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.registry))
