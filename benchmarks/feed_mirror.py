"""What a follower's copy of the feed's records costs (docs/scaling.md, "Failover and recovery"):
Redis commands and bytes Redis sends for one poll (``RedisFeedState.mirror``, every renewal period
on every follower), with the simulator's records at 100 and 1,000 users (a market, two checkpoints
a simulated minute in, the users' positions). Two polls: one after a save (the market rewritten
unchanged, one checkpoint slot and the positions changed) and one with nothing written since the
last. A private redis-server; figures from INFO stats, the INFO call itself taken off.

    python benchmarks/feed_mirror.py [--users 100 1000] [--polls 5]

Run it against another tree (the previous build's ``feeds/leader.py``) with PYTHONPATH=<tree>.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from portfolio_ws.feeds.leader import RedisFeedState
from portfolio_ws.settings import SimulatorSettings
from simulator.checkpoint import Checkpoint, Market, Positions
from simulator.clock import SimClock
from simulator.engine import Simulation
sys.path.append(str(Path(__file__).resolve().parents[1]))  # appended: a PYTHONPATH tree comes first
from tests.redis_server import RedisServer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "feed_mirror.json"


async def _counters(raw: aioredis.Redis) -> tuple[int, int]:
    stats = await raw.info("stats")
    return int(stats["total_commands_processed"]), int(stats["total_net_output_bytes"])


async def _poll_cost(raw: aioredis.Redis, follower: RedisFeedState, overhead: tuple[int, int]) -> tuple[int, int]:
    before = await _counters(raw)
    await follower.mirror()
    after = await _counters(raw)
    return after[0] - before[0] - overhead[0], after[1] - before[1] - overhead[1]


async def measure(url: str, users: int, polls: int) -> dict[str, object]:
    settings = SimulatorSettings()
    start = SimClock.from_settings(settings, time.time()).start
    names = [f"user-{i:05d}" for i in range(users)]
    sim = Simulation(names, settings, start)
    sim.initial_events()
    sim.advance_to(start + 60)
    market = Market.new(settings, start, time.time(), False, names)
    leader, follower = RedisFeedState(url), RedisFeedState(url)
    raw = aioredis.Redis.from_url(url)
    await raw.flushall()
    try:
        first, second = await _counters(raw), await _counters(raw)
        overhead = (second[0] - first[0], second[1] - first[1])  # one INFO call
        checkpoint = Checkpoint(market.market_id, 100, {n: 1 for n in names}, sim).encode()
        await leader.put("market", market.encode())
        await leader.put("checkpoint-0", checkpoint)
        await leader.put("checkpoint-1", checkpoint)
        await leader.put("positions", Positions(market.market_id, {n: 1 for n in names}).encode())
        await follower.mirror()
        saved, idle = [], []
        for n in range(polls):
            await leader.put("market", market.encode())
            await leader.put("positions", Positions(market.market_id, {u: 2 + n for u in names}).encode())
            await leader.put(f"checkpoint-{n % 2}", checkpoint[:-1] + b" " * (n + 1) + b"}")  # changed
            saved.append(await _poll_cost(raw, follower, overhead))
            idle.append(await _poll_cost(raw, follower, overhead))
        return {"users": users, "records_bytes": sum(len(c[0]) for c in follower.copies.values()),
                "after_save": {"commands": statistics.median(c for c, _ in saved),
                               "bytes": statistics.median(b for _, b in saved)},
                "idle": {"commands": statistics.median(c for c, _ in idle),
                         "bytes": statistics.median(b for _, b in idle)}}
    finally:
        await raw.aclose()
        await leader.close()
        await follower.close()


async def run(users: list[int], polls: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder)) as redis:
        return [await measure(redis.url, n, polls) for n in users]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = asyncio.run(run(args.users, args.polls))
    for row in rows:
        print(json.dumps(row))
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps({"polls": args.polls, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
