"""Redis Streams ingest under kill -9 (issue 15): two real ``portfolio-ws serve`` nodes read one
stream in one consumer group, each user has two sockets on the surviving node, and node 1 is killed
with SIGKILL while entries flow - holding entries it had read and not acknowledged (it is stopped
first until Redis shows it holding some, so the test always covers that). Every entry must reach
every socket of its user exactly once, and no entry may stay pending for 30 s. Default settings:
claim_idle_seconds 10, claim_interval_seconds 5."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
import ujson

from tests.poll import until
from tests.procs import ServeProcess, add_users
from tests.publishing import trade_ids, trade_item
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

STREAM, GROUP = "pws:ingest", "portfolio-ws"
USERS = ["ann", "ben", "cat"]
ENTRIES = 600          # trades, round-robin over the users
KILL_AFTER = 200       # entries added before node 1 is stopped, then killed
PENDING_BOUND = 30.0   # the bound: nothing pending longer than this


def env(redis: RedisServer, node: str) -> dict[str, str]:
    return {"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis.url, "PORTFOLIO_WS_CLUSTER_NODE_ID": node,
            "PORTFOLIO_WS_INGEST_ENABLED": "true", "PORTFOLIO_WS_RECOVERY_MAX_EVENTS": "10000"}


async def consumers(raw: Any) -> dict[str, int]:
    """Consumer name -> entries it holds (read, not acknowledged)."""
    try:
        return {c["name"]: int(c["pending"]) for c in await raw.xinfo_consumers(STREAM, GROUP)}
    except aioredis.ResponseError:  # no group yet
        return {}


async def collect(client: Any, into: list[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        message = await client.recv(timeout=60)
        if message is None:
            return
        into.extend(trade_ids(message))


async def test_kill_9_of_a_node_mid_stream_delivers_every_entry_once_and_leaves_none_pending(
        io_loop: Any, tmp_path: Any, redis_server: RedisServer) -> None:
    doomed = ServeProcess(tmp_path, env=env(redis_server, "node-1"))
    survivor = ServeProcess(tmp_path, env=env(redis_server, "node-2"))
    ids = add_users(doomed.database, USERS)
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    sockets: list[tuple[str, Any, list[str]]] = []
    stop = asyncio.Event()
    readers: list[asyncio.Task[None]] = []
    try:
        await doomed.start()
        await survivor.start()
        await until(lambda: _count(consumers(raw), 2), 15, "both nodes in the group")
        for name in USERS:
            cookie, _ = await survivor.login(name)
            for _ in range(2):
                client = await survivor.connect(cookie)
                await client.subscribe("trades")
                await client.expect("snapshot")
                received: list[str] = []
                sockets.append((ids[name], client, received))
                readers.append(asyncio.ensure_future(collect(client, received, stop)))
        doomed_consumer = next(name for name in await consumers(raw) if name.startswith("node-1:"))

        items = [trade_item(ids[USERS[n % len(USERS)]], f"fill-{n}", f"t-{n}") for n in range(ENTRIES)]
        added = 0

        async def add(count: int) -> None:
            nonlocal added
            for item in items[added:added + count]:
                await raw.xadd(STREAM, {"event": ujson.dumps(item)})
            added += count

        await add(KILL_AFTER)
        os.kill(doomed.pid, signal.SIGSTOP)  # frozen mid-stream: what Redis hands it now, it holds

        async def doomed_holds_entries() -> bool:
            if (await consumers(raw)).get(doomed_consumer, 0) > 0:
                return True
            if added < ENTRIES:
                await add(5)
            return False

        await until(doomed_holds_entries, 15, "the frozen node holding entries")
        held = (await consumers(raw))[doomed_consumer]
        os.kill(doomed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        await doomed.wait(10)
        await add(ENTRIES - added)  # entries keep flowing after the kill

        async def nothing_pending() -> bool:
            return int((await raw.xpending(STREAM, GROUP))["pending"]) == 0

        await until(nothing_pending, PENDING_BOUND, f"the {held} entries the killed node held claimed and acknowledged")
        assert time.monotonic() - killed_at < PENDING_BOUND

        async def all_delivered() -> bool:
            return all(len(set(received)) >= ENTRIES // len(USERS) for _, _, received in sockets)

        await until(all_delivered, 30, "every entry on every socket of its user")
        stop.set()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for user_id, client, received in sockets:
            await client.assert_nothing_pending()  # nothing more comes: no entry twice
            expected = [item["data"]["tradeId"] for item in items if item["userId"] == user_id]
            assert sorted(received) == sorted(expected), "each entry once on each socket of its user"
        assert await raw.xpending_range(STREAM, GROUP, "-", "+", 10) == []
    finally:
        stop.set()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await raw.aclose()
        for node in (doomed, survivor):
            await node.stop()


async def _count(value: Any, expected: int) -> bool:
    return len(await value) == expected
