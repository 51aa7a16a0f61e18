"""One answer on every node (issue 14): two real nodes on one real Redis give a user the same
snapshot, the same ``GET /api/portfolio`` at the same ``seq`` and the same equity history
(``GET /api/portfolio/equity``) - on a node started after the
user's events, and on a node restarted under its id - because the state lives in Redis with its
offset and a node loads it before it first serves the user."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
import ujson

from portfolio_ws.bus import redis as redis_bus
from portfolio_ws.core.events import Event
from tests.builders import account, later, order, position, trade
from tests.buses import bus_until
from tests.harness import Client
from tests.harness import TestServer as Node
from tests.process.cluster.conftest import NodeFactory
from tests.redis_server import RedisServer

ALL = ["positions", "orders", "account", "trades"]


def day_of_events(user: str) -> list[Event]:
    """A morning: positions opened and one closed, orders through their lifecycle, trades, the account."""
    return [
        position(user, "AAPL", qty="100", at=later(1)), position(user, "MSFT", qty="20", at=later(2)),
        order(user, "o1", "new", at=later(3)), order(user, "o1", "filled", filled="50", avg="245.10", at=later(4)),
        order(user, "o2", "accepted", at=later(5)), trade(user, "t1", at=later(6)), trade(user, "t2", at=later(7)),
        account(user, equity="101000.50", at=later(8)), position(user, "MSFT", qty="0", at=later(9)),
        order(user, "o3", "new", symbol="NVDA", at=later(10)), trade(user, "t3", at=later(11)),
        account(user, equity="101250.75", at=later(12)),
    ]


async def snapshot_of(node: Node, cookie: str) -> tuple[int, Any, Client]:
    client = await node.connect(cookie)
    await client.subscribe(*ALL)
    snap = await client.expect("snapshot")
    return snap["seq"], snap["data"], client


async def rest_of(node: Node, cookie: str) -> tuple[int, Any]:
    response = await node.fetch("/api/portfolio", cookie=cookie)
    assert response.code == 200, response.body
    body = ujson.loads(response.body)
    return body["seq"], body["data"]


async def equity_of(node: Node, cookie: str) -> Any:
    response = await node.fetch("/api/portfolio/equity", cookie=cookie)
    assert response.code == 200, response.body
    return ujson.loads(response.body)


async def until_taken_in(client: Client, seq: int) -> None:
    """Read a client's messages until one at ``seq`` (the node has taken in the event)."""
    while True:
        msg = await client.recv()
        assert msg is not None, "closed"
        if msg.get("seq", 0) >= seq:
            return


async def test_same_snapshot_and_portfolio_on_a_late_node_and_after_a_restart(io_loop: Any,
                                                                                make_node: NodeFactory) -> None:
    a = await make_node()
    alice = a.add_user("alice").user_id
    cookie = await a.login("alice")
    watcher = await a.connect(cookie)
    await watcher.subscribe("trades")
    await watcher.expect("snapshot")
    for event in day_of_events(alice):      # before node b exists
        a.publish(event)
    while True:                             # node a has taken in all twelve
        if (msg := await watcher.recv()) is not None and "t3" in ujson.dumps(msg.get("data")):
            break
    seq_a, snap_a, _ = await snapshot_of(a, cookie)

    b = await make_node()                   # started after every event: never saw any
    seq_b, snap_b, on_b = await snapshot_of(b, cookie)
    assert (seq_b, snap_b) == (seq_a, snap_a)
    assert [p["symbol"] for p in snap_b["positions"]] == ["AAPL"] and len(snap_b["trades"]) == 3
    assert await rest_of(a, cookie) == await rest_of(b, cookie) == (seq_a, snap_a)
    equity_a = await equity_of(a, cookie)   # the equity history too, though b never had the user's events
    assert [p["equity"] for p in equity_a["points"]] == ["101250.75"]  # one minute: its latest
    assert await equity_of(b, cookie) == equity_a

    # Node a restarted under the same id: a new process that has seen nothing.
    a.http.stop()
    await a.service.shutdown(drain_seconds=1.0)
    await a.service.bus.close()  # type: ignore[attr-defined]
    again = await make_node(cluster__node_id="node-1")
    seq_r, snap_r, on_r = await snapshot_of(again, cookie)
    assert (seq_r, snap_r) == (seq_a, snap_a)
    assert await rest_of(again, cookie) == (seq_a, snap_a)
    assert await equity_of(again, cookie) == equity_a

    b.publish(trade(alice, "t4", at=later(20)))        # and both keep the same answer as events go on
    again.publish(order(alice, "o2", "canceled", at=later(21)))
    await until_taken_in(on_b, seq_a + 2)
    await until_taken_in(on_r, seq_a + 2)
    seq_b2, data_b2 = await rest_of(b, cookie)
    assert seq_b2 == seq_a + 2 and len(data_b2["trades"]) == 4
    assert await rest_of(again, cookie) == (seq_b2, data_b2)
    assert (await snapshot_of(again, cookie))[:2] == (await snapshot_of(b, cookie))[:2] == (seq_b2, data_b2)


async def test_a_node_that_never_saw_the_user_resumes_a_client_from_the_history_in_redis(
        io_loop: Any, make_node: NodeFactory) -> None:
    a = await make_node()
    bob = a.add_user("bob").user_id
    cookie = await a.login("bob")
    first = await a.connect(cookie)
    await first.subscribe("trades")
    await first.expect("snapshot")
    a.publish(trade(bob, "t1"))
    last = (await first.expect("trade_executed"))["seq"]
    first.close()
    a.publish(trade(bob, "t2", at=later(1)))
    a.publish(trade(bob, "t3", at=later(2)))
    await bus_until(a.service.bus, lambda: a.service.bus.counters["published"] == 3)  # type: ignore[arg-type, attr-defined]
    b = await make_node()                       # started after all three
    resumed = await b.connect(cookie)
    await resumed.subscribe("trades", resume_from=last)
    replay = await resumed.expect("batch")
    assert [t["tradeId"] for t in replay["data"]["trades"]] == ["t2", "t3"]
    info = await resumed.expect("info", "RESUMED")
    assert info["data"]["details"] == {"recovered": True, "from": last, "to": last + 2}


async def served_a_morning(node: Node) -> tuple[str, str, Client]:
    """Alice, served by ``node`` through a morning of events: her id, session and a socket of hers
    that has them all."""
    alice = node.add_user("alice").user_id
    cookie = await node.login("alice")
    watcher = await node.connect(cookie)
    await watcher.subscribe(*ALL)
    await watcher.expect("snapshot")
    for event in day_of_events(alice):
        node.publish(event)
    while (msg := await watcher.recv()) is None or "101250.75" not in ujson.dumps(msg.get("data")):
        pass  # the last event's equity (t3 came one event before it): nothing more is on its way
    return alice, cookie, watcher


async def test_after_redis_restarted_empty_a_node_that_never_served_the_user_gives_the_same_answer(
        io_loop: Any, make_node: NodeFactory, redis_server: RedisServer) -> None:
    """Redis restarted empty numbers the user's events afresh and holds only what follows; node a,
    which served the user throughout, puts its whole state back at the offset Redis is at, so node
    b, which never served the user, loads the same snapshot and ``GET /api/portfolio``."""
    a = await make_node()
    alice, cookie, watcher = await served_a_morning(a)
    redis_server.restart()  # empty: no offset, no state, no history
    a.publish(trade(alice, "t4", at=later(20)))  # the first event after: a fresh offset
    seen_t4 = put_back = False  # a puts back at its reconnect or at t4's jump: its socket gets a snapshot
    while not (seen_t4 and put_back):
        msg = await watcher.recv()
        assert msg is not None, "closed"
        seen_t4 = seen_t4 or "t4" in ujson.dumps(msg.get("data"))
        put_back = put_back or msg["type"] == "snapshot"
    await bus_until(a.bus, lambda: a.bus.counters["restored"] == 1)  # type: ignore[attr-defined]
    seq_a, snap_a = await rest_of(a, cookie)
    assert len(snap_a["trades"]) == 4 and len(snap_a["orders"]) == 3 and snap_a["account"]

    b = await make_node()                   # never saw the user: loads it from Redis
    seq_b, snap_b, on_b = await snapshot_of(b, cookie)
    assert (seq_b, snap_b) == (seq_a, snap_a)
    assert await rest_of(b, cookie) == (seq_a, snap_a)
    a.publish(order(alice, "o2", "canceled", at=later(21)))  # and both go on alike
    await until_taken_in(on_b, seq_a + 1)
    assert await rest_of(b, cookie) == await rest_of(a, cookie)
    assert a.bus.counters["restored"] == 1 and b.bus.counters["restored"] == 0  # type: ignore[attr-defined]


async def next_snapshot(client: Client) -> dict[str, Any]:
    """Read a client's messages until a snapshot comes unasked (a sync, or a node's put-back)."""
    while (msg := await client.recv()) is None or msg["type"] != "snapshot":
        assert msg is not None, "closed"
    return msg


async def test_after_redis_restarted_empty_a_user_with_no_events_since_is_put_back_on_every_node(
        io_loop: Any, make_node: NodeFactory, redis_server: RedisServer) -> None:
    """Redis restarted empty and no event of the user since: node a, which served her throughout,
    puts her state back as soon as its subscription returns (her offset is gone), at a new offset,
    and its socket gets a snapshot; node c, whose client connected right after the restart (before
    or after the put-back), and node b, started later, serve the same whole state as a. Before, both
    served an empty portfolio until her next event, and c kept building on it afterwards."""
    a = await make_node()
    c = await make_node()
    alice, cookie, watcher = await served_a_morning(a)
    seq_before, whole = await rest_of(a, cookie)
    assert len(whole["trades"]) == 3 and len(whole["orders"]) == 3 and whole["account"]

    redis_server.restart()  # empty: no offset, no state, no history
    on_c = await c.connect(cookie)  # right after the restart
    await on_c.subscribe(*ALL)
    put_back = await next_snapshot(watcher)  # a's socket: the put-back, at a new offset
    assert put_back["seq"] > seq_before and put_back["data"] == whole
    await bus_until(a.bus, lambda: a.bus.counters["restored"] == 1)  # type: ignore[attr-defined]
    while (snap := await next_snapshot(on_c))["seq"] < put_back["seq"]:
        pass  # c's first snapshot may come before the put-back (then empty); the put-back's replaces it
    assert (snap["seq"], snap["data"]) == (put_back["seq"], whole)
    assert await rest_of(c, cookie) == await rest_of(a, cookie) == (put_back["seq"], whole)

    b = await make_node()  # started later: loads her from Redis
    seq_b, snap_b, on_b = await snapshot_of(b, cookie)
    assert (seq_b, snap_b) == (put_back["seq"], whole)
    a.publish(trade(alice, "t4", at=later(20)))  # and all go on alike, offsets continuing
    await until_taken_in(on_b, put_back["seq"] + 1)
    await until_taken_in(on_c, put_back["seq"] + 1)
    assert await rest_of(b, cookie) == await rest_of(c, cookie) == await rest_of(a, cookie)
    assert (await rest_of(a, cookie))[0] == put_back["seq"] + 1
    assert b.bus.counters["restored"] == c.bus.counters["restored"] == 0  # type: ignore[attr-defined]


async def test_after_redis_restarted_empty_a_node_that_loaded_the_user_meanwhile_is_made_whole(
        io_loop: Any, make_node: NodeFactory, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Node c loads the user after Redis restarted empty and before node a put its state back: it
    loads what Redis holds (nothing), then takes a's put-back like a sync - its socket gets the
    whole snapshot - and the next event; both answer alike at the same seq."""
    monkeypatch.setattr(redis_bus, "BACKOFF_FIRST", 1.0)  # a comes back a second after the restart
    a, c = await make_node(), await make_node()
    alice, cookie, watcher = await served_a_morning(a)
    seq_before, whole = await rest_of(a, cookie)
    redis_server.restart()  # empty; c loads the user at once, a puts it back on reconnecting
    on_c = await c.connect(cookie)
    await on_c.subscribe(*ALL)
    first = await on_c.expect("snapshot")
    assert first["data"]["orders"] == [], "c loaded the user after a put it back: not the window"
    seqs, pushed = [first["seq"]], []
    a.publish(trade(alice, "t4", at=later(20)))
    await bus_until(a.bus, lambda: a.bus.counters["restored"] == 1 and a.bus.counters["published"] == 13)  # type: ignore[arg-type, attr-defined]
    raw = aioredis.Redis.from_url(redis_server.url)
    last = int(await raw.get(a.bus.seq_key(alice)))  # type: ignore[arg-type, attr-defined]
    await raw.aclose()
    await until_taken_in(watcher, last)
    while seqs[-1] < last:
        msg = await on_c.recv()
        assert msg is not None, "closed"
        seqs.append(msg.get("seq", seqs[-1]))
        if msg["type"] == "snapshot":
            pushed.append(msg["data"])
    assert seqs == sorted(seqs) and seqs[-1] == last > seq_before
    seq_a, snap_a = await rest_of(a, cookie)
    assert seq_a == last and len(snap_a["trades"]) == 4 and snap_a["orders"] == whole["orders"]
    assert pushed and pushed[0]["orders"] == whole["orders"]  # c's socket: the whole state, unasked
    assert await rest_of(c, cookie) == (seq_a, snap_a)
    assert (await snapshot_of(c, cookie))[:2] == (await snapshot_of(a, cookie))[:2] == (seq_a, snap_a)
