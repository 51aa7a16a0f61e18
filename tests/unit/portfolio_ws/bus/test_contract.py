"""The EventBus contract, run against every implementation: the in-process bus and the Redis bus.

A "node" is one bus instance as one server process holds it: the in-process bus has one node (the
process); the Redis bus gets one per ``node()`` call, all on one private redis-server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest

from portfolio_ws.bus import EventBus
from portfolio_ws.bus.memory import InMemoryBus
from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.core.events import Event
from tests.builders import account, order, position, trade
from tests.buses import Received
from tests.redis_server import RedisServer

TIMEOUT = 10.0


NodeFactory = Callable[[], Awaitable[EventBus]]


def _memory(tmp_path: Path) -> tuple[NodeFactory, Callable[[], Awaitable[None]]]:
    bus = InMemoryBus()

    async def node() -> EventBus:
        return bus

    async def stop() -> None:
        await bus.close()

    return node, stop


def _redis(tmp_path: Path) -> tuple[NodeFactory, Callable[[], Awaitable[None]]]:
    server = RedisServer(tmp_path / "redis").start()
    buses: list[RedisBus] = []

    async def node() -> EventBus:
        bus = RedisBus(server.url, node_id=f"node-{len(buses) + 1}")
        buses.append(bus)
        await bus.start()
        for user in USERS:  # a Redis node receives the events of the users it follows
            await bus.follow(user)
        return bus

    async def stop() -> None:
        for bus in buses:
            await bus.close()
        server.stop()

    return node, stop


FACTORIES = {"memory": _memory, "redis": _redis}
USERS = ("u1", "u2")  # every user these tests publish for


@pytest.fixture(params=sorted(FACTORIES))
def node(request: pytest.FixtureRequest, io_loop: Any, tmp_path: Path) -> Iterator[NodeFactory]:
    make, stop = FACTORIES[request.param](tmp_path)
    try:
        yield make
    finally:
        io_loop.run_sync(stop, timeout=TIMEOUT)


def mixed(user: str, n: int) -> list[Event]:
    makers: list[Callable[[int], Event]] = [
        lambda i: position(user, price=f"{100 + i}.25"), lambda i: order(user, f"order-{i}"),
        lambda i: account(user, equity=f"{100000 + i}.10"), lambda i: trade(user, f"trade-{i}", pnl=None),
    ]
    return [makers[i % 4](i) for i in range(n)]


def per_user_offsets(items: list[tuple[Event, int | None]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for event, seq in items:
        if seq is not None:
            out.setdefault(event.user_id, []).append(seq)
    return out


async def test_every_subscriber_gets_every_event_once_in_publish_order(io_loop: Any, node: NodeFactory) -> None:
    bus = await node()
    first, second = Received(bus), Received(bus)
    events = mixed("u1", 40)
    for event in events:
        bus.publish(event)
    await first.until(40)
    await second.until(40)
    assert first.events == events and second.events == events  # equal values: Decimal, datetime exact


async def test_every_node_gets_every_event_from_every_node(io_loop: Any, node: NodeFactory) -> None:
    a, b = await node(), await node()
    on_a, on_b = Received(a), Received(b)
    from_a, from_b = mixed("u1", 20), mixed("u2", 20)
    for x, y in zip(from_a, from_b):
        a.publish(x)
        b.publish(y)
    for received in (on_a, on_b):
        await received.until(40)
        got = received.events
        assert [e for e in got if e.user_id == "u1"] == from_a
        assert [e for e in got if e.user_id == "u2"] == from_b


async def test_offsets_strictly_increase_per_user_across_nodes(io_loop: Any, node: NodeFactory) -> None:
    a, b = await node(), await node()
    on_a, on_b = Received(a), Received(b)
    for i, event in enumerate(mixed("u1", 30)):
        (a if i % 2 else b).publish(event)
    await on_a.until(30)
    await on_b.until(30)
    offsets_a, offsets_b = per_user_offsets(on_a.items), per_user_offsets(on_b.items)
    assert offsets_a == offsets_b  # every node saw the same numbering
    for seqs in offsets_a.values():
        assert seqs == sorted(set(seqs)) and len(seqs) == 30
    assert [e for e, _ in on_a.items] == [e for e, _ in on_b.items]  # and the same order


async def test_unsubscribed_handler_gets_nothing_more(io_loop: Any, node: NodeFactory) -> None:
    bus = await node()
    gone, stays = Received(bus), Received(bus)
    bus.publish(position("u1"))
    await gone.until(1)
    gone.unsubscribe()
    bus.publish(position("u1", price="1.00"))
    await stays.until(2)
    assert len(gone.items) == 1


async def test_a_failing_handler_does_not_starve_the_others(io_loop: Any, node: NodeFactory) -> None:
    bus = await node()

    def broken(event: Event, seq: int | None) -> None:
        raise RuntimeError("boom")

    bus.subscribe_numbered(broken)
    received = Received(bus)
    bus.publish(position("u1"))
    bus.publish(position("u1", price="2.00"))
    assert len(await received.until(2)) == 2


async def test_plain_subscribe_gets_events_without_offsets(io_loop: Any, node: NodeFactory) -> None:
    bus = await node()
    got: list[Event] = []
    bus.subscribe(got.append)
    received = Received(bus)
    bus.publish(trade("u1"))
    await received.until(1)
    assert got == [trade("u1")]
