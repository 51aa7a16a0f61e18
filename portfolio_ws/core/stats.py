"""Counters behind ``GET /api/admin/websocket-stats`` and the rules that turn them into a status.

Everything is a plain number updated by the engine; ``report`` formats it. No division by zero:
every ratio has an explicit value for "nothing happened yet".
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import Any, Iterable, Sequence

from .health import FeedHealth
from . import wire

LATENCY_SAMPLES = 10_000
RATE_WINDOW = 300.0  # seconds over which the disconnect rate is measured
# Upper bounds (seconds) of the delivery-latency histogram behind /metrics: around the 50 ms batch
# window, where most deliveries land, and out to the seconds a stalled loop would show.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q`` (0..1) quantile of already sorted values, nearest rank; None when there are none.
    The one definition behind admin stats, the load test's report and the benchmarks."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Histogram:
    """Cumulative counts of values under each bound since start (Prometheus's histogram), so
    scrapes of several workers or nodes add up, unlike quantiles of recent samples."""

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, values at or under it), the last bound ``inf`` (every value)."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self._counts):
            running += count
            out.append((bound, running))
        return out


class Stats:
    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.events_emitted = 0          # events taken in (one per event, whatever the fan-out)
        self.messages_delivered = 0      # data messages written to connections
        self.control_messages = 0        # info/error/pong written
        self.unbatched_messages = 0      # data messages there would have been, one per event per connection
        self.connections_opened = 0
        self.disconnects = 0
        self.reconnects = 0
        self.rejected_connections = 0
        self.rate_limited = 0
        self.stale_events = 0            # dropped: at or below the user's offset, or its state went past them
        self._closed_durations = 0.0
        self._disconnect_times: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.latency = Histogram(LATENCY_BUCKETS)
        # (start, took, after a pause): 30 s of 50 ms ticks. The batcher pauses while no window is
        # pending; the gap across a pause is not a late tick.
        self._ticks: deque[tuple[float, float, bool]] = deque(maxlen=600)

    def delivered(self, connections: int, raw_events: int, latency: float | None) -> None:
        self.messages_delivered += connections
        self.unbatched_messages += raw_events * connections
        if latency is not None:
            latency = max(0.0, latency)
            self._latencies.append(latency)
            self.latency.observe(latency)

    def disconnected(self, duration: float, now: float) -> None:
        self.disconnects += 1
        self._closed_durations += duration
        self._disconnect_times.append(now)

    def disconnect_rate_per_minute(self, now: float) -> float:
        times = self._disconnect_times
        while times and times[0] < now - RATE_WINDOW:
            times.popleft()
        span = min(RATE_WINDOW, max(now - self.started_at, 60.0))
        return len(times) / (span / 60.0)

    def batch_efficiency(self) -> float:
        """Share of messages saved by batching, 0..1 (0 before any event)."""
        if not self.unbatched_messages:
            return 0.0
        return min(1.0, max(0.0, 1.0 - self.messages_delivered / self.unbatched_messages))

    def ticked(self, started: float, took: float, resumed: bool = False) -> None:
        """A batch tick ran: when it started (to see late ticks) and how long flush + writes took.
        ``resumed``: the first tick after the batcher paused (its gap to the one before is no delay)."""
        self._ticks.append((started, took, resumed))

    def tick_ms(self) -> dict[str, float | None]:
        ticks = list(self._ticks)
        gaps = [b[0] - a[0] for a, b in zip(ticks, ticks[1:]) if not b[2]]
        took = sorted(t for _, t, _ in ticks)
        p50 = percentile(took, 0.5)
        return {"p50": round(p50 * 1000, 2) if p50 is not None else None,
                "max": round(took[-1] * 1000, 2) if took else None,
                "maxGap": round(max(gaps) * 1000, 2) if gaps else None}

    def latency_ms(self) -> dict[str, float | None]:
        return percentiles_ms(self._latencies)

    def status(self, *, enabled: bool, feed: FeedHealth, feed_started_at: float, silence: float,
               active: int, now: float, bus_connected: bool = True) -> str:
        if not enabled:
            return "disabled"
        last = feed.last_event_at if feed.last_event_at is not None else feed_started_at
        if not feed.connected or (feed.market_open and now - last > silence):
            return "offline"
        if not bus_connected:  # a shared bus (Redis) that is down: clients kept, events held back
            return "degraded"
        if feed.impaired:  # e.g. one Alpaca account of several cannot connect: the others stream
            return "degraded"
        rate = self.disconnect_rate_per_minute(now)
        if rate >= 5 and rate > 0.10 * active:
            return "degraded"
        # "Over 100 events" counts the events that reached connections (the efficiency's base):
        # events nobody is connected to receive say nothing about batching.
        if self.unbatched_messages > 100 and self.batch_efficiency() < 0.5:
            return "degraded"
        return "healthy"

    def average_connection_seconds(self, open_ages: list[float]) -> float:
        count = self.disconnects + len(open_ages)
        return (self._closed_durations + sum(open_ages)) / count if count else 0.0


def uptime(seconds: float) -> dict[str, Any]:
    whole = int(max(0.0, seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return {"seconds": whole, "formatted": f"{days}d {text}" if days else text}


def percent_text(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def iso_or_none(moment: float | None) -> str | None:
    return None if moment is None else wire.epoch_timestamp(moment)


def percentiles_ms(samples: "deque[float]") -> dict[str, float | None]:
    """p50/p95/p99/max in ms of seconds-valued samples (None while there are none)."""
    ordered = sorted(samples)
    if not ordered:
        return {"p50": None, "p95": None, "p99": None, "max": None, "samples": 0}  # type: ignore[dict-item]

    def pick(q: float) -> float:
        return round(float(percentile(ordered, q) or 0.0) * 1000.0, 2)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99),
            "max": round(ordered[-1] * 1000.0, 2), "samples": len(ordered)}
