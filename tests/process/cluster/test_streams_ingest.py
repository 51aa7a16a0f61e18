"""Redis Streams ingest on a real redis-server: entries XADDed by the platform reach the user's
sockets in order; a poison entry goes to the dead-letter stream with its reason while later entries
flow; an id sent twice (or sent over HTTP too) is delivered once; an entry delivered too often is
dead-lettered; a pending entry of a vanished consumer is claimed; the counters in admin stats and
/metrics. (The kill -9 of a real ``serve`` node is tests/process/reliability/test_streams_kill.py.)"""

from __future__ import annotations

from typing import Any, Awaitable

import pytest
import redis.asyncio as aioredis
import ujson

from tests.apidocs import fetch_docs
from tests.poll import until
from tests.process.cluster.conftest import NodeFactory
from tests.publishing import new_key, publish, trade_ids, trade_item
from tests.redis_server import RedisServer

STREAM, DEAD, GROUP = "pws:ingest", "pws:ingest:dead", "portfolio-ws"
TOKEN = "ingest-admin-token-1234"
TIMEOUT = 15.0  # each poll of Redis (the ingest's acknowledgements have no future to await from here)


def entry(item: Any) -> dict[str, str]:
    return {"event": item if isinstance(item, str) else ujson.dumps(item)}


async def trades(client: Any, count: int) -> list[str]:
    seen: list[str] = []
    while len(seen) < count:
        message = await client.recv()
        assert message is not None, f"only {seen} arrived"
        seen += trade_ids(message)
    return seen


async def watching(node: Any, username: str) -> tuple[str, Any]:
    user_id = node.add_user(username).user_id
    client = await node.connect(await node.login(username))
    await client.subscribe("trades")
    await client.expect("snapshot")
    return user_id, client


@pytest.fixture
def raw(io_loop: Any, redis_server: RedisServer) -> Any:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    io_loop.run_sync(client.aclose)


async def pending(raw: Any) -> int:
    return int((await raw.xpending(STREAM, GROUP))["pending"])


async def test_entries_reach_the_users_socket_in_stream_order(make_node: NodeFactory, raw: Any) -> None:
    node = await make_node(ingest__enabled=True)
    alice, client = await watching(node, "alice")
    for n in range(30):
        await raw.xadd(STREAM, entry(trade_item(alice, f"fill-{n}", f"t-{n}")))
    assert await trades(client, 30) == [f"t-{n}" for n in range(30)]
    await until(lambda: _equals(pending(raw), 0), TIMEOUT, "every entry acknowledged")
    await client.assert_nothing_pending()
    stats = node.service.stats()["ingest"]
    assert stats["read"] == 30 and stats["published"] == 30 and stats["deadLettered"] == 0
    assert stats["stream"] == STREAM and stats["consumer"].startswith("node-1:")


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_a_poison_entry_is_dead_lettered_with_its_reason_and_later_entries_flow(
        make_node: NodeFactory, raw: Any) -> None:
    node = await make_node(ingest__enabled=True, auth__admin_token=TOKEN)
    alice, client = await watching(node, "alice")
    bad_price = trade_item(alice, "fill-bad", "t-bad", price="12,50")
    stranger = trade_item("nobody-such", "fill-x", "t-x")
    first = await raw.xadd(STREAM, entry(trade_item(alice, "fill-1", "t-1")))
    poison = [await raw.xadd(STREAM, {"event": "{not json"}),
              await raw.xadd(STREAM, {"payload": "no event field"}),
              await raw.xadd(STREAM, entry(bad_price)),
              await raw.xadd(STREAM, entry(stranger)),
              await raw.xadd(STREAM, {"event": b"\xff\xfe"})]
    last = await raw.xadd(STREAM, entry(trade_item(alice, "fill-2", "t-2")))
    assert first < last
    assert await trades(client, 2) == ["t-1", "t-2"]
    await until(lambda: _equals(raw.xlen(DEAD), 5), TIMEOUT, "five dead letters")
    # In the order of the poison entries (batches read one after another may settle in either order).
    dead = sorted(await raw.xrange(DEAD), key=lambda letter: poison.index(letter[1]["entry"]))
    assert [fields["entry"] for _, fields in dead] == poison
    reasons = [fields["reason"] for _, fields in dead]
    assert reasons[0].startswith("event: not JSON: ")
    assert reasons[1].startswith('no "event" field')
    assert reasons[2].startswith("data.price: ") and "decimal" in reasons[2]
    assert reasons[3] == "userId: no such user"
    assert reasons[4] == "event: not UTF-8"
    assert ujson.loads(dead[2][1]["fields"]) == entry(bad_price)  # the original fields, to replay
    assert ujson.loads(dead[1][1]["fields"]) == {"payload": "no event field"}
    await until(lambda: _equals(pending(raw), 0), TIMEOUT, "the poison acknowledged too")
    response = await node.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
    (await fetch_docs(node)).http("/api/admin/websocket-stats", "GET", response)  # as the OpenAPI doc says
    stats = ujson.loads(response.body)["ingest"]
    assert (stats["read"], stats["published"], stats["deadLettered"]) == (7, 2, 5)
    metrics = (await node.fetch("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).body.decode()
    assert 'portfolio_ws_ingest_entries_total{outcome="dead_lettered"} 5.0' in metrics
    assert 'portfolio_ws_ingest_entries_total{outcome="published"} 2.0' in metrics
    await client.assert_nothing_pending()


async def test_an_id_sent_twice_or_over_http_too_is_delivered_once(make_node: NodeFactory, raw: Any) -> None:
    a = await make_node(ingest__enabled=True)
    alice, client = await watching(a, "alice")
    key = new_key(a)
    http = ujson.loads((await publish(a, [trade_item(alice, "fill-0", "t-0")], key)).body)
    assert http["results"][0]["status"] == "accepted"
    for item_id, trade_id in (("fill-0", "t-0 again"), ("fill-1", "t-1"), ("fill-1", "t-1 again"),
                              ("fill-2", "t-2")):
        await raw.xadd(STREAM, entry(trade_item(alice, item_id, trade_id)))
    assert await trades(client, 3) == ["t-0", "t-1", "t-2"]
    again = ujson.loads((await publish(a, [trade_item(alice, "fill-2", "t-2 over http")], key)).body)
    assert again["results"][0]["status"] == "duplicate"  # taken through the stream: the same ids
    await until(lambda: _equals(pending(raw), 0), TIMEOUT, "duplicates acknowledged")
    await client.assert_nothing_pending()
    stats = a.service.stats()["ingest"]
    assert (stats["published"], stats["duplicates"]) == (2, 2)


async def test_a_vanished_consumers_entries_are_claimed_and_one_delivered_too_often_is_dead_lettered(
        make_node: NodeFactory, raw: Any) -> None:
    node = await make_node(ingest__enabled=True, ingest__claim_idle_seconds=1.0,
                           ingest__claim_interval_seconds=0.2, ingest__max_deliveries=3)
    alice, client = await watching(node, "alice")
    await until(lambda: _has_group(raw), TIMEOUT, "the group made")
    # A consumer that read two entries and died holding them (never acknowledged): added and read in
    # one MULTI, so the node's own blocked read can't take them first.
    async with raw.pipeline(transaction=True) as pipe:
        pipe.xadd(STREAM, entry(trade_item(alice, "fill-1", "t-1")))
        pipe.xadd(STREAM, entry(trade_item(alice, "fill-2", "t-2")))
        pipe.xreadgroup(GROUP, "ghost:dead", {STREAM: ">"}, count=2)
        *ids, ghost = await pipe.execute()
    assert [i for i, _ in ghost[0][1]] == ids
    # The second has already been delivered 3 times (max_deliveries): it is dead-lettered, not retried.
    await raw.execute_command("XCLAIM", STREAM, GROUP, "ghost:dead", 0, ids[-1], "RETRYCOUNT", 3)
    assert await trades(client, 1) == ["t-1"]
    await until(lambda: _equals(raw.xlen(DEAD), 1), TIMEOUT, "the over-delivered entry dead-lettered")
    [(_, fields)] = await raw.xrange(DEAD)
    assert fields["entry"] == ids[-1] and fields["reason"].startswith("not published after 3 deliveries")
    await until(lambda: _equals(pending(raw), 0), TIMEOUT, "nothing left pending")
    assert node.service.stats()["ingest"]["claimed"] >= 1
    await client.assert_nothing_pending()


async def _has_group(raw: Any) -> bool:
    try:
        return bool(await raw.xinfo_groups(STREAM))
    except aioredis.ResponseError:
        return False


async def test_without_redis_the_ingest_is_refused_naming_the_setting() -> None:
    from portfolio_ws.config import load_settings
    from portfolio_ws.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_settings(overrides={"ingest.enabled": True})
    assert refused.value.key == "ingest.enabled" and "cluster.redis_url" in str(refused.value)


async def test_a_publish_not_confirmed_is_retried_not_dead_lettered_and_runs_once(
        io_loop: Any, tmp_path: Any, redis_server: RedisServer, raw: Any, monkeypatch: Any) -> None:
    from portfolio_ws.auth.users import UserStore
    from portfolio_ws.bus.redis import RedisBus
    from portfolio_ws.ingest import streams
    from portfolio_ws.settings import IngestSettings
    from tests.harness import FAST_HASHER

    monkeypatch.setattr(streams, "PUBLISH_WAIT_SECONDS", 0.2)  # how long a publish may take: short here
    users = UserStore(str(tmp_path / "users.sqlite3"), hasher=FAST_HASHER)
    alice = users.add("alice", "a-long-password").user_id
    bus = RedisBus(redis_server.url, node_id="n1")  # not started: its publishes wait, as while Redis is away
    ingest = streams.StreamIngest(IngestSettings(enabled=True), redis_server.url, "pws:", bus, users, False, "n1")
    await ingest.start()
    try:
        await raw.xadd(STREAM, entry(trade_item(alice, "fill-1", "t-1")))
        await until(lambda: _at_least(ingest.counters, "retried", 3), TIMEOUT, "the entry tried again")
        [row] = await raw.xpending_range(STREAM, GROUP, "-", "+", 10)
        assert row["times_delivered"] >= 2 and await raw.xlen(DEAD) == 0  # pending, not dead-lettered
        await bus.start()  # Redis "back": the queued publish runs
        await until(lambda: _equals(pending(raw), 0), TIMEOUT, "the entry acknowledged")
        assert await raw.xlen(bus.recovery_key(alice)) == 1  # the user's history holds the trade once
        assert bus.counters["published"] == 1 and ingest.counters["deadLettered"] == 0
        # Re-reads awaited the publish still queued instead of queueing more (one more at most: a
        # re-read just after it ran, a duplicate then).
        assert ingest.counters["published"] + ingest.counters["duplicates"] == 1  # acknowledged once
        assert bus.counters["deduplicated"] <= 1
    finally:
        await ingest.close()
        await bus.close()
        users.close()


async def _at_least(counters: dict[str, int], name: str, value: int) -> bool:
    return counters[name] >= value
