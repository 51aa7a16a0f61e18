"""The admin figures of every node in ``pws:nodes`` (cluster/stats.py): a node killed without its
shutdown never deletes its field, so the live nodes delete the figures of nodes silent past the
stale bound; a live node's are never deleted (issue 14: before, dead nodes' fields stayed for ever)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from portfolio_ws.cluster.stats import STALE_AFTER_SECONDS, SUMMED, ClusterStats
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

NOW = 1_800_000_000.0


def node(server: RedisServer, node_id: str, clock: list[float]) -> ClusterStats:
    def report() -> dict[str, Any]:
        return {"node": {"id": node_id, "pid": 1}, "status": "healthy", **{name: 1 for name in SUMMED}}
    return ClusterStats(server.url, node_id, "pws:", report, lambda: clock[0])


async def fields(server: RedisServer) -> set[str]:
    client = aioredis.from_url(server.url, decode_responses=True)
    try:
        return set(await client.hkeys("pws:nodes"))  # type: ignore[misc]
    finally:
        await client.aclose()


async def test_a_dead_nodes_figures_are_deleted_by_a_live_node_and_the_live_ones_kept(
        redis_server: RedisServer) -> None:
    dead_at, quiet_at, now = [NOW - STALE_AFTER_SECONDS - 1], [NOW - STALE_AFTER_SECONDS + 1], [NOW]
    dead, quiet, live = node(redis_server, "dead", dead_at), node(redis_server, "quiet", quiet_at), \
        node(redis_server, "live", now)
    try:
        assert await dead.publish() == 0            # its last figures; then it was killed (no close)
        assert await quiet.publish() == 0           # late, but within the bound
        client = aioredis.from_url(redis_server.url)
        await client.hset("pws:nodes", "not-a-summary", "?")  # type: ignore[misc]
        await client.aclose()
        assert await live.publish() == 1
        assert await fields(redis_server) == {"quiet", "live", "not-a-summary"}
        cluster = await live.read({"node": {"id": "live", "pid": 1}, "status": "healthy",
                                   **{name: 1 for name in SUMMED}})
        assert [n["id"] for n in cluster["nodes"]] == ["live", "quiet"]
        now[0] += 2                                 # "quiet" is now past the bound too
        assert await live.publish() == 1
        assert await fields(redis_server) == {"live", "not-a-summary"}
    finally:
        for stats in (dead, quiet, live):
            await stats.close()


async def test_a_second_live_node_under_one_id_is_told_to_stop_and_a_restart_after_a_crash_is_not(
        redis_server: RedisServer) -> None:
    """An operator started a node under an id a live node had (the trial: two feed leaders and
    double intake, no word said). Each write reads back the field it replaces: the field changed
    since this node's last write means another live process writes it; the later started stops."""
    clock = [NOW]
    first = node(redis_server, "node-1", clock)
    clock[0] += 30
    second = node(redis_server, "node-1", clock)          # started later, same id
    stopped: list[str] = []
    second.on_duplicate = lambda: stopped.append("second")
    first.on_duplicate = lambda: stopped.append("first")
    try:
        await first.publish()
        await second.publish()   # its first write: a dead predecessor's field looks the same, so no verdict
        assert stopped == [] and second.duplicate is None
        await first.publish()    # first sees someone else wrote its field: it was there first, goes on
        assert stopped == [] and first.duplicate is None
        await second.publish()   # second sees the same: it started later, so it stops
        assert stopped == ["second"]
        assert second.duplicate is not None and second.duplicate.startswith(
            "node-1 is in use by another live node (pid 1, started earlier): every node needs its own id")
        await first.publish()
        await second.close()     # its close leaves the live node's field alone
        assert await fields(redis_server) == {"node-1"}
        assert stopped == ["second"] and first.duplicate is None

        clock[0] += 30
        restarted = node(redis_server, "node-1", clock)   # first "crashed" (no more writes); a new run of it
        restarted.on_duplicate = lambda: stopped.append("restarted")
        for _ in range(3):
            await restarted.publish()
        assert stopped == ["second"] and restarted.duplicate is None
        await restarted.close()
    finally:
        await first.close()
