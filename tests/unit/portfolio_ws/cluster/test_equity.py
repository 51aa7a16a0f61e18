"""The equity history's one contract, kept by the one-process version (core/equity.py) and the
cluster's (cluster/equity.py, in Redis, written by the bus's publish script): the same account
updates give the same points. And in a cluster, two nodes answer alike for a user, including a node
that never had the user's socket (before, each node kept only what it had been delivered)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator

import pytest

from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.cluster.equity import RedisEquityHistory
from portfolio_ws.core.equity import EquityHistory
from tests.builders import account
from tests.buses import Received
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

OPEN = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)   # 09:30 New York


class Memory:
    def __init__(self) -> None:
        self.history = EquityHistory()

    async def record(self, user: str, at: datetime, equity: Decimal) -> None:
        self.history.record(user, at, equity)

    async def read(self, user: str) -> Any:
        return await self.history.read(user)


@pytest.fixture(params=["memory", "redis"])
def history(request: Any, io_loop: Any) -> Iterator[Any]:
    if request.param == "memory":
        yield Memory()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    made = RedisEquityHistory(server.url)
    yield made
    io_loop.run_sync(made.close)


async def test_one_point_a_minute_first_time_last_value(history: Any) -> None:
    for seconds, value in ((0, "100000.00"), (20, "100010.50"), (59, "100020.25"), (61, "99990.00")):
        await history.record("u", OPEN + timedelta(seconds=seconds), Decimal(value))
    assert await history.read("u") == (OPEN.date(), [(OPEN, Decimal("100020.25")),
                                                     (OPEN + timedelta(seconds=61), Decimal("99990.00"))])
    assert await history.read("someone else") == (None, [])


async def test_a_new_day_starts_afresh_and_late_updates_are_ignored(history: Any) -> None:
    await history.record("u", OPEN, Decimal("1.00"))
    await history.record("u", OPEN + timedelta(minutes=5), Decimal("2.00"))
    await history.record("u", OPEN + timedelta(minutes=3), Decimal("9.00"))      # older than the last point
    await history.record("u", OPEN + timedelta(hours=14), Decimal("3.00"))       # 23:30 New York, same day
    day, points = await history.read("u")
    assert day == OPEN.date() and [v for _, v in points] == [Decimal("1.00"), Decimal("2.00"), Decimal("3.00")]
    next_open = OPEN + timedelta(days=1)
    await history.record("u", next_open, Decimal("4.00"))
    await history.record("u", OPEN + timedelta(hours=2), Decimal("5.00"))        # yesterday's, late
    assert await history.read("u") == (next_open.date(), [(next_open, Decimal("4.00"))])


async def test_seeded_random_updates_give_the_same_points_as_the_one_process_version(history: Any) -> None:
    rng = random.Random(14)
    reference = EquityHistory()
    at = OPEN
    for _ in range(400):
        at += timedelta(seconds=rng.choice([-90, 0.25, 7, 13.5, 61, 3600 * 9]))   # late ones and new days
        value = Decimal(rng.randrange(1, 10**10)).scaleb(-rng.choice([2, 4]))
        reference.record("u", at, value)
        await history.record("u", at, value)
    assert await history.read("u") == await reference.read("u")


async def test_two_nodes_answer_the_same_history_for_a_user(io_loop: Any, redis_server: RedisServer) -> None:
    """The events go through node 1's bus (it holds the user's socket); node 2 never followed the user,
    yet both read the same points, equal to the one-process history of the same updates."""
    node1 = RedisBus(redis_server.url, node_id="n1")
    await node1.start()
    await node1.follow("u1")
    received = Received(node1)
    readers = [RedisEquityHistory(redis_server.url), RedisEquityHistory(redis_server.url)]
    reference = EquityHistory()
    try:
        updates = [account("u1", equity=f"{100000 + 17 * n}.{n % 100:02d}", at=OPEN + timedelta(seconds=23 * n))
                   for n in range(40)]
        for event in updates:
            node1.publish(event)
            reference.take(event)
        await received.until(len(updates))
        one, two = [await reader.read("u1") for reader in readers]
        assert one == two == await reference.read("u1")
        assert len(one[1]) == 15  # 40 updates 23 s apart, 897 s: a point a minute
    finally:
        for reader in readers:
            await reader.close()
        await node1.close()


