"""Two nodes sharing one Redis: a user connected to both gets every event once per connection, in
offset order, whichever node the feed published on; a login and a resume work on either node."""

from __future__ import annotations

from typing import Any

from tests.process.cluster.conftest import NodeFactory
from tests.builders import position, trade
from tests.harness import Client

ALL = ["positions", "orders", "account", "trades"]


async def read_trades(client: Client, count: int) -> tuple[list[str], list[int]]:
    """Trade ids in the order received, and the ``seq`` of every data message, until ``count`` trades."""
    ids: list[str] = []
    seqs: list[int] = []
    while len(ids) < count:
        msg = await client.recv()
        assert msg is not None, "closed"
        if "seq" not in msg:
            continue
        seqs.append(msg["seq"])
        if msg["type"] == "trade_executed":
            ids.append(msg["data"]["tradeId"])
        elif msg["type"] == "batch":
            ids += [t["tradeId"] for t in msg["data"].get("trades", [])]
    return ids, seqs


async def test_a_user_on_both_nodes_gets_every_event_once_per_connection_in_offset_order(
        io_loop: Any, make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    alice = a.add_user("alice").user_id
    cookie = await a.login("alice")   # a session made on node a ...
    on_a = await a.connect(cookie)
    on_b = await b.connect(cookie)    # ... is valid on node b
    for client in (on_a, on_b):
        await client.subscribe(*ALL)
        snap = await client.expect("snapshot")
        assert snap["data"]["trades"] == []
    sent = [f"trade-{i}" for i in range(30)]
    for i, trade_id in enumerate(sent):  # the feed's events, published on either node
        (a if i % 2 else b).publish(trade(alice, trade_id))
        if i % 5 == 0:
            (b if i % 2 else a).publish(position(alice, price=f"{100 + i}.00"))
    got_a, seqs_a = await read_trades(on_a, len(sent))
    got_b, seqs_b = await read_trades(on_b, len(sent))
    assert sorted(got_a) == sorted(sent) and len(set(got_a)) == len(sent)   # each once
    assert got_a == got_b                                                     # the same (offset) order
    for seqs in (seqs_a, seqs_b):
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)          # strictly increasing
    await on_a.assert_nothing_pending()
    await on_b.assert_nothing_pending()


async def test_a_client_resumes_on_the_other_node(io_loop: Any, make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    bob = a.add_user("bob").user_id
    cookie = await b.login("bob")
    first = await a.connect(cookie)
    watcher = await b.connect(cookie)  # tells us when node b has taken the events in
    for client in (first, watcher):
        await client.subscribe("trades")
        await client.expect("snapshot")
    a.publish(trade(bob, "t1"))
    last = (await first.expect("trade_executed"))["seq"]
    first.close()
    b.publish(trade(bob, "t2"))
    a.publish(trade(bob, "t3"))
    got, _ = await read_trades(watcher, 3)  # t2 and t3 in whichever order Redis numbered them
    assert got[0] == "t1" and sorted(got) == ["t1", "t2", "t3"]
    again = await b.connect(cookie)
    await again.subscribe("trades", resume_from=last)
    replay = await again.expect("batch")
    assert [t["tradeId"] for t in replay["data"]["trades"]] == got[1:]
    resumed = await again.expect("info", "RESUMED")
    assert resumed["data"]["details"] == {"recovered": True, "from": last, "to": replay["seq"]}
