"""Feed faults (issue 6): a feed that raises in start(), whose background task dies, that
publishes garbage or whose health() raises never takes the server down; admin stats show it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

import ujson
from prometheus_client.parser import text_string_to_metric_families

from portfolio_ws.core.health import FeedHealth
from portfolio_ws.feeds import Feed
from tests.builders import account, position, trade

TOKEN = "feed-faults-admin-token"


class ScriptedFeed(Feed):
    """A feed the test drives: ``bus`` is what the server handed it; optional faults."""

    source = "scripted"

    def __init__(self, fail_start: bool = False, task_script: Any = None, fail_health: bool = False) -> None:
        self.fail_start = fail_start
        self.task_script = task_script
        self.fail_health = fail_health
        self.bus: Any = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, bus: Any) -> None:
        self.bus = bus
        if self.task_script is not None:
            self.task = asyncio.create_task(self.task_script(bus))
        if self.fail_start:
            raise RuntimeError("cannot reach the broker")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def health(self) -> FeedHealth:
        if self.fail_health:
            raise ValueError("health is broken")
        return FeedHealth("scripted", connected=True, market_open=False)


async def stats(server) -> dict[str, Any]:
    response = await server.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.code == 200, response.body
    return ujson.loads(response.body)


async def subscribed(server, name: str):
    user, cookie = await server.user_session(name)
    client = await server.connect(cookie)
    await client.subscribe("positions", "orders", "account", "trades")
    await client.expect("snapshot")
    return user, client


async def test_a_feed_that_raises_in_start_leaves_the_server_serving_and_shows_offline(make_server):
    feed = ScriptedFeed(fail_start=True)
    server = await make_server(feed=feed, auth__admin_token=TOKEN)  # start() raised: the server still started
    user, client = await subscribed(server, "alice")
    server.publish(trade(user.user_id))  # other publishers on the bus are still streamed
    assert (await client.expect("trade_executed"))["data"]["tradeId"] == "trade-1"
    report = await stats(server)
    assert report["status"] == "offline"
    assert report["feed"]["connected"] is False
    assert report["feed"]["details"]["failure"] == "start() raised RuntimeError"
    assert report["feed"]["errors"] == 1


async def test_a_feed_whose_background_task_dies_is_reported_offline(make_server, caplog):
    async def script(bus):
        await proceed.wait()
        bus.publish(started.pop())
        raise ConnectionResetError("stream dropped")

    proceed = asyncio.Event()
    started: list[Any] = []
    feed = ScriptedFeed(task_script=script)
    server = await make_server(feed=feed, auth__admin_token=TOKEN)
    user, client = await subscribed(server, "alice")
    assert (await stats(server))["status"] == "healthy"

    started.append(trade(user.user_id, "before-the-crash"))
    proceed.set()
    await asyncio.wait([feed.task])
    assert (await client.expect("trade_executed"))["data"]["tradeId"] == "before-the-crash"
    report = await stats(server)
    assert report["status"] == "offline" and report["feed"]["errors"] == 1
    assert report["feed"]["details"]["failure"] == "a background task raised ConnectionResetError"
    assert any("a background task raised ConnectionResetError" in r.getMessage() for r in caplog.records)
    server.publish(trade(user.user_id, "after"))
    assert (await client.expect("trade_executed"))["data"]["tradeId"] == "after"
    await client.assert_nothing_pending()


def forced(event: Any, **fields: Any) -> Any:
    """An event with fields forced past validation (frozen dataclasses can be bypassed)."""
    for name, value in fields.items():
        object.__setattr__(event, name, value)
    return event


async def test_garbage_from_a_feed_is_dropped_counted_and_never_reaches_anyone(make_server, caplog):
    feed = ScriptedFeed()
    server = await make_server(feed=feed, auth__admin_token=TOKEN)
    alice, client = await subscribed(server, "alice")
    uid = alice.user_id
    garbage = [
        None, "position_update", b"\x00", 42, {"user_id": uid}, [position(uid)], object(), position,
        forced(position(uid), quantity="100"),
        forced(position(uid), current_price=Decimal("NaN")),
        forced(position(uid), current_price=175.5),
        forced(account(uid), timestamp=datetime(2026, 1, 5, 15)),  # naive time
        forced(trade(uid), user_id=None),
        forced(trade(uid), user_id=""),
        forced(trade(uid), symbol=["NVDA"]),
        forced(account(uid), equity=Decimal("Infinity")),
    ]
    for n, thing in enumerate(garbage):
        feed.bus.publish(thing)
        feed.bus.publish(trade(uid, f"good-{n}"))
    received = []
    while len(received) < len(garbage):
        msg = await client.expect("trade_executed")
        received.append(msg["data"]["tradeId"])
    assert received == [f"good-{n}" for n in range(len(garbage))]
    await client.assert_nothing_pending()
    report = await stats(server)
    assert report["feed"]["errors"] == len(garbage)
    assert report["status"] == "healthy"  # dropped events are counted; the feed itself still delivers
    assert report["totalEventsEmitted"] == len(garbage)
    _, portfolio = server.service.core.portfolio(uid)
    assert [t["tradeId"] for t in portfolio["trades"]] == [f"good-{n}" for n in range(len(garbage))]
    dropped = [r for r in caplog.records if "event dropped" in r.getMessage()]
    assert 1 <= len(dropped) <= 2  # at most a line a second, however much garbage
    assert uid not in " ".join(r.getMessage() for r in dropped)  # what was dropped is never logged


async def test_a_feed_whose_health_raises_still_gets_an_admin_report(make_server):
    server = await make_server(feed=ScriptedFeed(fail_health=True), auth__admin_token=TOKEN)
    report = await stats(server)
    assert report["status"] == "offline"
    assert report["feed"]["source"] == "scripted" and report["feed"]["connected"] is False
    assert report["feed"]["details"] == {"failure": "health() raised ValueError"}
    assert (await server.fetch("/api/health")).code == 200


async def metrics(server) -> dict[str, float]:
    response = await server.fetch("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.code == 200, response.body
    return {s.name: s.value for family in text_string_to_metric_families(response.body.decode())
            for s in family.samples if not s.labels}


async def test_metrics_read_the_feed_through_its_guard_when_health_raises(make_server):
    # /metrics asked the feed past its guard: a health() that raised answered 500.
    server = await make_server(feed=ScriptedFeed(fail_health=True), auth__admin_token=TOKEN)
    assert (await metrics(server))["portfolio_ws_feed_connected"] == 0


async def test_metrics_show_a_feed_whose_task_died_disconnected(make_server):
    # /metrics asked the feed past its guard: a feed whose task had died still read connected there.
    async def script(bus):
        raise ConnectionResetError("stream dropped")

    feed = ScriptedFeed(task_script=script)
    server = await make_server(feed=feed, auth__admin_token=TOKEN)
    await asyncio.wait([feed.task])
    assert (await stats(server))["feed"]["connected"] is False
    assert (await metrics(server))["portfolio_ws_feed_connected"] == 0


async def test_shutdown_with_a_failed_feed_still_closes_every_client_1001(make_server):
    server = await make_server(feed=ScriptedFeed(fail_start=True))
    _, client = await subscribed(server, "alice")
    await server.service.shutdown(drain_seconds=1)
    assert await client.closed() == (1001, "Server shutting down")


async def test_a_bad_setting_found_by_a_feed_s_start_stops_the_server(tmp_path):
    """A ConfigError is a bad setting, not a feed fault: it is raised (the command prints one line,
    exit 2), not reported offline behind a server that serves nothing."""
    import pytest

    from portfolio_ws.errors import ConfigError
    from tests.harness import start_server

    class Misconfigured(ScriptedFeed):
        async def start(self, bus: Any) -> None:
            raise ConfigError("simulator.start", "must fall within the NYSE calendar's years")

    with pytest.raises(ConfigError) as info:
        await start_server(tmp_path, feed=Misconfigured())
    assert info.value.key == "simulator.start"
