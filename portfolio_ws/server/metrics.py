"""``GET /metrics``: the engine's counters in Prometheus text format (prometheus-client), read at
scrape time, so the hot path pays nothing. Operators only, like the admin stats."""

from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .http import AdminHandler
from .service import Service

PREFIX = "portfolio_ws_"
BUS_OUTCOMES = ("published", "delivered", "repaired", "dropped", "deduplicated", "duplicates", "invalid", "stale")


class ServiceCollector:
    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        core = self.service.core
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
        latency = GaugeMetricFamily(PREFIX + "delivery_latency_seconds",
                                    "Event received by the server to written to the socket (recent samples)",
                                    labels=["quantile"])
        figures = stats.latency_ms()
        for key, quantile in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"), ("max", "1")):
            ms = figures[key]
            if ms is not None:
                latency.add_metric([quantile], ms / 1000.0)
        yield latency
        bus_health = getattr(self.service.bus, "health", None)
        if callable(bus_health):  # cluster mode: what the Redis bus passed on and every drop, by reason
            figures_of_bus = bus_health()
            outcomes = CounterMetricFamily(PREFIX + "bus_events", "Redis bus events by outcome "
                                           "(published, delivered, repaired; dropped, deduplicated, duplicates, "
                                           "invalid, stale: not passed on)", labels=["outcome"])
            for outcome in BUS_OUTCOMES:
                value = core.stats.stale_events if outcome == "stale" else figures_of_bus.get(outcome, 0)
                outcomes.add_metric([outcome], value)
            yield outcomes
        health = self.service.feed.health()
        yield GaugeMetricFamily(PREFIX + "feed_connected", "1 when the feed is connected",
                                value=1 if health.connected else 0)


class MetricsHandler(AdminHandler):
    def initialize(self, service: Service) -> None:  # type: ignore[override]
        super().initialize(service)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ServiceCollector(service))  # type: ignore[arg-type]

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.registry))
