"""Scale-out (issue 14): a node takes in only the events of users with a socket on it (their
sharded channels), keeps following a user for a while after its last socket closes, then lets it
go, and picks it up again - state, offset and history from Redis - when it comes back."""

from __future__ import annotations

from typing import Any

from tests.builders import position, trade
from tests.buses import bus_until
from tests.process.cluster.conftest import NodeFactory


async def test_each_node_takes_in_only_its_own_users_events(io_loop: Any, make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    alice, bob = a.add_user("alice").user_id, a.add_user("bob").user_id
    on_a = await a.connect(await a.login("alice"))
    on_b = await b.connect(await b.login("bob"))
    for client in (on_a, on_b):
        await client.subscribe("trades")
        await client.expect("snapshot")
    for i in range(10):
        a.publish(trade(alice, f"a{i}"))
        a.publish(trade(bob, f"b{i}"))
    for client, prefix in ((on_a, "a"), (on_b, "b")):
        got: list[str] = []
        while len(got) < 10:
            msg = await client.recv()
            assert msg is not None
            got += [t["tradeId"] for t in msg["data"].get("trades", [msg["data"]])] if "seq" in msg else []
        assert got == [f"{prefix}{i}" for i in range(10)]
    # Each node took in its own user's ten events, not the other's.
    assert a.service.core.stats.events_emitted == 10 and b.service.core.stats.events_emitted == 10
    assert a.bus.health()["following"] == b.bus.health()["following"] == 1  # type: ignore[attr-defined]


async def test_a_node_lets_an_idle_user_go_and_loads_it_again_when_it_comes_back(
        io_loop: Any, make_node: NodeFactory) -> None:
    a = await make_node()
    alice = a.add_user("alice").user_id
    cookie = await a.login("alice")
    client = await a.connect(cookie)
    await client.subscribe("positions")
    await client.expect("snapshot")
    a.publish(position(alice, price="1.00"))
    await client.expect("position_update")
    client.close()
    await a.until(lambda: not a.connection_ids(alice))  # the close handled (Service.when)
    a.service.follow_linger = 0.0           # the linger has passed
    await a.service._unfollow_idle()       # the periodic sweep, now
    assert a.bus.health()["following"] == 0 and alice not in a.service.core.users  # type: ignore[attr-defined]

    a.publish(position(alice, price="2.00"))  # while nobody here follows alice
    await bus_until(a.bus, lambda: a.bus.counters["published"] == 2)  # type: ignore[arg-type, attr-defined]
    assert a.service.core.stats.events_emitted == 1
    again = await a.connect(cookie)
    await again.subscribe("positions")
    snap = await again.expect("snapshot")
    assert snap["data"]["positions"][0]["currentPrice"] == "2.00"   # loaded from Redis
    a.publish(position(alice, price="3.00"))
    update = await again.expect("position_update")
    assert update["seq"] == snap["seq"] + 1 and update["data"]["currentPrice"] == "3.00"
