"""The admin counters and the status rules: no division by zero, nothing negative, "0.0%" before events."""

from __future__ import annotations

import pytest

from portfolio_ws.core.stats import Stats, iso_or_none, percent_text, uptime
from portfolio_ws.core.health import FeedHealth

UP = FeedHealth(source="simulator", connected=True, last_event_at=1000.0, market_open=True)


def status(stats: Stats, now: float = 1000.0, active: int = 10, feed: FeedHealth = UP,
           enabled: bool = True, feed_started_at: float = 0.0, silence: float = 300.0,
           bus_connected: bool = True) -> str:
    return stats.status(enabled=enabled, feed=feed, feed_started_at=feed_started_at, silence=silence,
                        active=active, now=now, bus_connected=bus_connected)


# ---- batch efficiency -------------------------------------------------------------------------
def test_efficiency_is_zero_before_any_event() -> None:
    stats = Stats(0.0)
    assert stats.batch_efficiency() == 0.0
    assert percent_text(stats.batch_efficiency()) == "0.0%"


def test_efficiency_counts_messages_saved() -> None:
    stats = Stats(0.0)
    stats.delivered(connections=1, raw_events=10, latency=0.1)   # 10 events, one message
    assert stats.batch_efficiency() == pytest.approx(0.9)
    assert percent_text(stats.batch_efficiency()) == "90.0%"
    stats.delivered(connections=2, raw_events=1, latency=0.1)    # one event to two connections
    assert stats.unbatched_messages == 12 and stats.messages_delivered == 3
    assert percent_text(stats.batch_efficiency()) == "75.0%"


def test_efficiency_is_never_negative_nor_over_100() -> None:
    stats = Stats(0.0)
    stats.messages_delivered, stats.unbatched_messages = 50, 10
    assert stats.batch_efficiency() == 0.0
    stats.messages_delivered, stats.unbatched_messages = -5, 10
    assert stats.batch_efficiency() == 1.0


def test_unbatched_delivery_is_zero_percent() -> None:
    stats = Stats(0.0)
    for _ in range(5):
        stats.delivered(1, 1, 0.0)
    assert percent_text(stats.batch_efficiency()) == "0.0%"


# ---- disconnects and connections --------------------------------------------------------------
def test_disconnect_rate_right_after_start_does_not_divide_by_zero() -> None:
    stats = Stats(100.0)
    assert stats.disconnect_rate_per_minute(100.0) == 0.0
    stats.disconnected(1.0, 100.0)
    assert stats.disconnect_rate_per_minute(100.0) == 1.0   # measured over at least a minute


def test_disconnect_rate_over_the_last_five_minutes() -> None:
    stats = Stats(0.0)
    for i in range(10):
        stats.disconnected(5.0, 700.0 + i)
    assert stats.disconnect_rate_per_minute(710.0) == pytest.approx(2.0)
    stats.disconnected(5.0, 50.0)  # out of order is not expected; old ones simply age out
    assert stats.disconnect_rate_per_minute(1100.0) == 0.0
    assert stats.disconnects == 11


def test_average_connection_duration() -> None:
    stats = Stats(0.0)
    assert stats.average_connection_seconds([]) == 0.0
    stats.disconnected(10.0, 10.0)
    assert stats.average_connection_seconds([20.0, 30.0]) == pytest.approx(20.0)


# ---- latency ----------------------------------------------------------------------------------
def test_latency_before_any_sample() -> None:
    assert Stats(0.0).latency_ms() == {"p50": None, "p95": None, "p99": None, "max": None, "samples": 0}


def test_latency_percentiles_in_milliseconds() -> None:
    stats = Stats(0.0)
    for ms in range(1, 101):
        stats.delivered(1, 1, ms / 1000.0)
    latency = stats.latency_ms()
    assert set(latency) >= {"p50", "p95", "p99"}
    assert 49 <= latency["p50"] <= 51  # type: ignore[operator]
    assert 94 <= latency["p95"] <= 96  # type: ignore[operator]
    assert 98 <= latency["p99"] <= 100  # type: ignore[operator]
    assert latency["max"] == 100.0 and latency["samples"] == 100


def test_latency_never_negative() -> None:
    stats = Stats(0.0)
    stats.delivered(1, 1, -0.5)  # a clock step backwards
    assert stats.latency_ms()["p50"] == 0.0


# ---- uptime -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds, formatted, whole", [
    (0.0, "00:00:00", 0),
    (0.9, "00:00:00", 0),
    (59.0, "00:00:59", 59),
    (3661.5, "01:01:01", 3661),
    (86400.0, "1d 00:00:00", 86400),
    (90061.0, "1d 01:01:01", 90061),
    (-3.0, "00:00:00", 0),
])
def test_uptime(seconds: float, formatted: str, whole: int) -> None:
    assert uptime(seconds) == {"seconds": whole, "formatted": formatted}


def test_iso_or_none() -> None:
    assert iso_or_none(None) is None
    assert iso_or_none(0.0) == "1970-01-01T00:00:00.000Z"


# ---- status -----------------------------------------------------------------------------------
def test_disabled_wins_over_everything() -> None:
    down = FeedHealth(source="alpaca", connected=False)
    assert status(Stats(0.0), enabled=False, feed=down) == "disabled"


def test_healthy_when_nothing_happened() -> None:
    assert status(Stats(0.0), now=0.0, active=0, feed=FeedHealth("none", True, None, False)) == "healthy"


def test_degraded_while_a_shared_bus_is_down_but_offline_and_disabled_come_first() -> None:
    assert status(Stats(0.0), bus_connected=False) == "degraded"
    assert status(Stats(0.0), bus_connected=False, feed=FeedHealth("alpaca", connected=False,
                                                                   last_event_at=999.0)) == "offline"
    assert status(Stats(0.0), bus_connected=False, enabled=False) == "disabled"


def test_offline_when_the_feed_is_down() -> None:
    assert status(Stats(0.0), feed=FeedHealth("alpaca", connected=False, last_event_at=999.0)) == "offline"


def test_offline_when_silent_over_five_minutes_during_market_hours() -> None:
    silent = FeedHealth("alpaca", connected=True, last_event_at=1000.0, market_open=True)
    assert status(Stats(0.0), now=1300.0, feed=silent) == "healthy"
    assert status(Stats(0.0), now=1300.5, feed=silent) == "offline"


def test_silence_outside_market_hours_is_fine() -> None:
    closed = FeedHealth("alpaca", connected=True, last_event_at=1000.0, market_open=False)
    assert status(Stats(0.0), now=100_000.0, feed=closed) == "healthy"


def test_silence_counts_from_feed_start_before_the_first_event() -> None:
    never = FeedHealth("alpaca", connected=True, last_event_at=None, market_open=True)
    assert status(Stats(0.0), now=200.0, feed=never, feed_started_at=0.0) == "healthy"
    assert status(Stats(0.0), now=400.0, feed=never, feed_started_at=0.0) == "offline"


def test_degraded_by_disconnect_rate() -> None:
    stats = Stats(0.0)
    for i in range(50):  # 10 a minute over the last 5 minutes
        stats.disconnected(1.0, 700.0 + i)
    assert status(stats, now=1000.0, active=20, feed=FeedHealth("s", True, 1000.0)) == "degraded"
    # ...unless that is a small share of many connections
    assert status(stats, now=1000.0, active=500, feed=FeedHealth("s", True, 1000.0)) == "healthy"


def test_a_few_disconnects_are_not_degraded_even_with_no_connections_left() -> None:
    stats = Stats(0.0)
    for i in range(3):
        stats.disconnected(1.0, 990.0 + i)
    assert status(stats, now=1000.0, active=0) == "healthy"


def test_degraded_by_poor_batching_after_100_events() -> None:
    stats = Stats(0.0)
    for _ in range(101):
        stats.events_emitted += 1
        stats.delivered(1, 1, 0.0)
    assert status(stats) == "degraded"


def test_poor_batching_under_100_events_is_not_degraded() -> None:
    stats = Stats(0.0)
    for _ in range(100):
        stats.events_emitted += 1
        stats.delivered(1, 1, 0.0)
    assert status(stats) == "healthy"


def test_events_nobody_was_connected_for_do_not_degrade() -> None:
    # Events for users with no connection are taken in but never sent: nothing was batched badly.
    stats = Stats(0.0)
    stats.events_emitted = 10_000
    assert stats.batch_efficiency() == 0.0
    assert status(stats, active=0) == "healthy"


def test_good_batching_is_healthy() -> None:
    stats = Stats(0.0)
    stats.events_emitted = 1000
    for _ in range(10):
        stats.delivered(1, 100, 0.0)
    assert status(stats) == "healthy"


# ---- the batcher's ticks ---------------------------------------------------------------------
def test_the_gap_across_a_pause_of_the_batcher_is_not_a_late_tick() -> None:
    # The batcher pauses while no window is pending; the gap to the tick that resumes it is no
    # delay of the IOLoop, a gap between two ticks of one run is.
    stats = Stats(0.0)
    stats.ticked(10.0, 0.001, resumed=True)
    stats.ticked(10.05, 0.002)
    stats.ticked(10.25, 0.001)       # 200 ms late: the IOLoop was busy
    stats.ticked(70.0, 0.001, resumed=True)
    stats.ticked(70.05, 0.001)
    assert stats.tick_ms() == {"p50": 1.0, "max": 2.0, "maxGap": 200.0}
