"""Admin stats in a cluster (issue 8): each node reports itself (``node``) and the whole cluster
(``cluster.nodes`` and ``cluster.total``), and a Redis outage shows as ``degraded`` with the bus
health, then recovers by itself."""

from __future__ import annotations

from typing import Any

import ujson
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import position
from tests.buses import bus_until
from tests.process.cluster.conftest import NodeFactory
from tests.redis_server import RedisServer

TOKEN = "cluster-admin-token-5678"


async def stats(node: Any) -> dict[str, Any]:
    response = await node.fetch("/api/admin/websocket-stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.code == 200, response.body
    return ujson.loads(response.body)  # type: ignore[no-any-return]


async def test_each_node_reports_itself_and_the_cluster_total(io_loop: Any, make_node: NodeFactory) -> None:
    a, b = await make_node(auth__admin_token=TOKEN), await make_node(auth__admin_token=TOKEN)
    cookie = await a.login(a.add_user("alice").username)
    for _ in range(2):
        await a.connect(cookie)
    await b.connect(cookie)
    await a.service.cluster_stats.publish()  # type: ignore[union-attr]  # the periodic report, now
    await b.service.cluster_stats.publish()  # type: ignore[union-attr]

    on_a, on_b = await stats(a), await stats(b)
    assert (on_a["node"]["id"], on_a["activeConnections"]) == ("node-1", 2)
    assert (on_b["node"]["id"], on_b["activeConnections"]) == ("node-2", 1)
    for report in (on_a, on_b):
        cluster = report["cluster"]
        assert cluster["reachable"] is True
        assert [(n["id"], n["activeConnections"]) for n in cluster["nodes"]] == [("node-1", 2), ("node-2", 1)]
        assert cluster["total"]["nodes"] == 2 and cluster["total"]["activeConnections"] == 3
        assert report["bus"]["connected"] is True and report["status"] == "healthy"

    await b.service.shutdown(drain_seconds=1.0)  # a node that leaves takes its figures with it
    assert [n["id"] for n in (await stats(a))["cluster"]["nodes"]] == ["node-1"]


async def test_a_redis_outage_is_degraded_then_recovers_by_itself(io_loop: Any, make_node: NodeFactory,
                                                                  redis_server: RedisServer) -> None:
    a = await make_node(auth__admin_token=TOKEN)
    cookie = await a.login(a.add_user("alice").username)
    client = await a.connect(cookie)
    redis_server.stop()
    await bus_until(a.service.bus, lambda: not a.service.bus.connected)  # type: ignore[arg-type, attr-defined]
    down = await stats(a)
    assert down["status"] == "degraded" and down["bus"]["connected"] is False
    assert down["cluster"]["reachable"] is False and down["cluster"]["total"]["activeConnections"] == 1
    await client.send({"type": "ping"})  # the node keeps its clients meanwhile
    assert (await client.recv() or {}).get("type") == "pong"

    redis_server.start()
    await bus_until(a.service.bus, lambda: a.service.bus.connected)  # type: ignore[arg-type, attr-defined]
    up = await stats(a)
    assert up["status"] == "healthy" and up["bus"]["connected"] is True and up["cluster"]["reachable"] is True


async def test_every_event_not_passed_on_is_counted_in_the_stats_and_the_metrics(io_loop: Any,
                                                                                 make_node: NodeFactory) -> None:
    a = await make_node(auth__admin_token=TOKEN)
    alice = a.add_user("alice").user_id
    client = await a.connect(await a.login("alice"))
    await client.subscribe("positions")
    await client.expect("snapshot")
    a.publish(position(alice, price="1.00"))
    first = await client.expect("position_update")
    a.service.receive_event(position(alice, price="9.00"), first["seq"])  # a stale offset: dropped
    report = await stats(a)
    assert report["bus"]["stale"] == 1
    for reason in ("dropped", "deduplicated", "duplicates", "invalid"):
        assert report["bus"][reason] == 0
    response = await a.fetch("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    samples = {s.name + str(sorted(s.labels.items())): s.value
               for family in text_string_to_metric_families(response.body.decode()) for s in family.samples}
    assert samples["portfolio_ws_bus_events_total[('outcome', 'stale')]"] == 1
    assert samples["portfolio_ws_bus_events_total[('outcome', 'delivered')]"] == 1
    assert samples["portfolio_ws_bus_events_total[('outcome', 'deduplicated')]"] == 0
