"""Two live ``serve`` nodes under one ``cluster.node_id`` (an operator's slip: the trial ran two feed
leaders, each taking in every event, with no word said): the one started later stops within two
report periods, exit 2, naming the setting; the first goes on serving."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.procs import serve_process  # noqa: F401  (a fixture)
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow  # real processes

PERIODS = 2 * 5.0 + 10  # two of cluster/stats.py's report periods, and room for a loaded machine


async def test_a_node_started_under_a_live_nodes_id_stops_with_exit_2(serve_process: Any,
                                                                       redis_server: RedisServer) -> None:
    env = {"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_server.url, "PORTFOLIO_WS_CLUSTER_NODE_ID": "node-1"}
    first = serve_process(env=env)
    await first.start()
    second = serve_process(env=env)
    await second.start()
    assert await second.wait(PERIODS) == 2
    log = second.log.read_text()
    assert "Error: invalid setting cluster.node_id: node-1 is in use by another live node" in log, log
    assert (await first.fetch("/api/health")).code == 200  # the first goes on
    assert "is also used by a node started later" in first.log.read_text()
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:  # the second's stop leaves the feed lock under node-1 alone: it is the first's
        assert await client.get("pws:feed-leader") == "node-1"
    finally:
        await client.aclose()
