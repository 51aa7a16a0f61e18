"""The admin stats document: the API document's fields plus PROTOCOL.md's, with no division by zero."""

from __future__ import annotations

from portfolio_ws.core.report import admin_report
from portfolio_ws.core.health import FeedHealth
from tests.builders import NOW, position
from tests.unit.portfolio_ws.core.driver import connect, make_core, publish

FEED = FeedHealth(source="simulator", connected=True, last_event_at=NOW, market_open=True)


def test_report_right_after_start() -> None:
    core = make_core(now=NOW)
    report = admin_report(core, FEED, NOW, 300.0, NOW)
    assert report["status"] == "healthy" and report["enabled"] is True
    assert report["activeConnections"] == 0 and report["totalMessagesDelivered"] == 0
    assert report["totalEventsEmitted"] == 0 and report["totalDisconnects"] == 0
    assert report["totalReconnects"] == 0 and report["connectionsByUser"] == {}
    perf = report["performance"]
    assert perf["batchEfficiency"] == "0.0%"
    assert perf["disconnectRatePerMinute"] == "0.00"
    assert perf["avgConnectionDurationSeconds"] == 0.0
    assert set(perf["latencyMs"]) >= {"p50", "p95", "p99"}
    assert report["uptime"] == {"seconds": 0, "formatted": "00:00:00"}
    assert report["limits"]["connectionsPerUser"] == 5 and report["limits"]["totalConnections"] == 100
    assert report["feed"]["source"] == "simulator" and report["feed"]["connected"] is True
    assert report["feed"]["lastEventAt"] == "2026-01-05T15:00:00.000Z"
    assert report["timestamp"] == "2026-01-05T15:00:00.000Z"


def test_report_after_traffic() -> None:
    core = make_core(now=NOW)
    a = connect(core, "u1", "positions")
    connect(core, "u2")
    publish(core, *(position("u1", price=f"17{i}.00") for i in range(10)))
    core.flush(NOW + 0.2)
    core.closed(a, NOW + 30)
    report = admin_report(core, FEED, NOW, 300.0, NOW + 3661)
    assert report["activeConnections"] == 1 and report["connectionsByUser"] == {"u2": 1}
    assert report["totalEventsEmitted"] == 10 and report["totalMessagesDelivered"] == 1
    assert report["totalDisconnects"] == 1
    assert report["performance"]["batchEfficiency"] == "90.0%"
    assert report["performance"]["latencyMs"]["p50"] == 200.0
    assert report["uptime"] == {"seconds": 3661, "formatted": "01:01:01"}


def test_report_disabled() -> None:
    core = make_core(streaming={"enabled": False})
    assert admin_report(core, FEED, NOW, 300.0, NOW)["status"] == "disabled"
