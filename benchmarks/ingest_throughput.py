"""Events a second one node takes in through the Redis Streams ingest, and the latency to the
sockets; the HTTP publish measured on the same node in the same run, for comparison.

A private redis-server and one ``portfolio-ws serve --feed publish`` node on it with
``ingest.enabled``; ``--users`` users with one socket each (subscribed to every channel) in this
process. Each run, alternating:

- **burst**: ``--events`` trades (round-robin over the users) XADDed as fast as redis-py pipelines of
  ``--batch`` go; events per second = events / (first XADD to the group having acknowledged the
  last entry). The latency from each entry's XADD to its socket includes the backlog's queueing.
- **paced**: ``--paced-events`` trades XADDed one by one at ``--rate`` a second: the latency from
  XADD to the socket at a steady rate the node keeps up with (p50/p99/max).
- **http**: benchmarks/publish_throughput.py's run against the same node (batches of ``--batch``).

Medians over ``--runs``. The machine is shared: see the notes in docs/performance.md.

    python benchmarks/ingest_throughput.py                 # ~2 minutes
    python benchmarks/ingest_throughput.py --events 10000 --runs 3 --out ingest.json
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis  # noqa: E402

from benchmarks.publish_throughput import SUBSCRIBE, one_run as http_run, percentile  # noqa: E402
from benchmarks.reliability_common import (Server, free_port, make_users_and_sessions, open_client,  # noqa: E402
                                           proc_sample, serve_command, write_report)
from portfolio_ws.auth.apikeys import ApiKeyStore  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

STREAM, GROUP = "pws:ingest", "portfolio-ws"


class Sockets:
    """One socket per user; when each trade id first arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.expected = 0
        self.all_in = asyncio.Event()
        self.ready = asyncio.Event()
        self.snapshots = 0
        self.count = 0
        self.clients: list[Any] = []

    def on_message(self, raw: bytes) -> None:
        now = time.perf_counter()
        message = json.loads(raw)
        if message["type"] == "snapshot":
            self.snapshots += 1
            if self.snapshots == self.count:
                self.ready.set()
        trades = ([message["data"]] if message["type"] == "trade_executed"
                  else message["data"].get("trades", []) if message["type"] == "batch" else [])
        for trade in trades:
            self.arrived.setdefault(trade["tradeId"], now)
        if len(self.arrived) >= self.expected:
            self.all_in.set()

    async def open(self, port: int, sessions: list[tuple[str, str]]) -> None:
        self.count = len(sessions)
        for _, cookie in sessions:
            self.clients.append(await open_client(port, cookie, self.on_message,
                                                  lambda c: c.send_text(SUBSCRIBE), lambda c: None))
        await asyncio.wait_for(self.ready.wait(), 30)

    def expect(self, count: int) -> None:
        self.arrived.clear()
        self.expected = count
        self.all_in.clear()

    def close(self) -> None:
        for client in self.clients:
            client.close()


def entries(sessions: list[tuple[str, str]], count: int, tag: str) -> list[dict[str, str]]:
    return [{"event": json.dumps({"type": "trade", "userId": sessions[n % len(sessions)][0], "id": f"{tag}-{n}",
                                  "data": {"tradeId": f"{tag}-{n}", "symbol": "NVDA", "side": "buy", "quantity": "1",
                                           "price": "520.50", "executedAt": "2026-01-05T15:30:00Z"}})}
            for n in range(count)]


def stats_ms(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p99": round(percentile(values, 99), 2),
            "max": round(max(values), 2)}


async def acknowledged(redis: aioredis.Redis, last_id: str) -> float:
    """When the group had read and acknowledged every entry up to ``last_id`` (polled every 2 ms)."""
    while True:
        [group] = [g for g in await redis.xinfo_groups(STREAM) if g["name"] == GROUP]
        if group["last-delivered-id"] == last_id and group["pending"] == 0:
            return time.perf_counter()
        await asyncio.sleep(0.002)


async def burst(redis: aioredis.Redis, sockets: Sockets, sessions: list[tuple[str, str]], events: int,
                batch: int, run: int, pid: int) -> dict[str, Any]:
    items = entries(sessions, events, f"b{run}")
    sockets.expect(events)
    sent: dict[str, float] = {}
    cpu = proc_sample(pid)["cpu_s"]
    began = time.perf_counter()
    last_id = ""
    for start in range(0, events, batch):
        chunk = items[start:start + batch]
        at = time.perf_counter()
        async with redis.pipeline(transaction=False) as pipe:
            for fields in chunk:
                pipe.xadd(STREAM, fields)
            ids = await pipe.execute()
        last_id = ids[-1]
        for n in range(start, start + len(chunk)):
            sent[f"b{run}-{n}"] = at
    done = await acknowledged(redis, last_id)
    cpu = proc_sample(pid)["cpu_s"] - cpu
    await asyncio.wait_for(sockets.all_in.wait(), 120)
    latency = [(sockets.arrived[i] - sent[i]) * 1000 for i in sent]
    return {"events": events, "accepted_per_second": round(events / (done - began)),
            "seconds": round(done - began, 2), "node_cpu_percent": round(100 * cpu / (done - began)),
            "ms_xadd_to_socket": stats_ms(latency),
            "delivered_once": len(sockets.arrived) == events}


async def paced(redis: aioredis.Redis, sockets: Sockets, sessions: list[tuple[str, str]], events: int,
                rate: float, run: int) -> dict[str, Any]:
    items = entries(sessions, events, f"p{run}")
    sockets.expect(events)
    sent: dict[str, float] = {}
    began = time.perf_counter()
    for n, fields in enumerate(items):
        due = began + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the pacing itself, not a wait for a result
        sent[f"p{run}-{n}"] = time.perf_counter()
        await redis.xadd(STREAM, fields)
    await asyncio.wait_for(sockets.all_in.wait(), 120)
    latency = [(sockets.arrived[i] - sent[i]) * 1000 for i in sent]
    return {"events": events, "rate": rate, "ms_xadd_to_socket": stats_ms(latency),
            "delivered_once": len(sockets.arrived) == events}


async def one_run(port: int, pid: int, url: str, key: str, sessions: list[tuple[str, str]], args: argparse.Namespace,
                  run: int) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    sockets = Sockets()
    try:
        await sockets.open(port, sessions)
        result = {"burst": await burst(redis, sockets, sessions, args.events, args.batch, run, pid),
                  "paced": await paced(redis, sockets, sessions, args.paced_events, args.rate, run)}
    finally:
        sockets.close()
        await redis.aclose()
    result["http"] = await http_run([port], key, sessions, args.events, args.batch, run, 0, 0)  # clean items, as XADDed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--paced-events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        redis_server = RedisServer(Path(folder) / "redis").start()
        database = str(Path(folder) / "bench.sqlite3")
        sessions = make_users_and_sessions(database, args.users)
        store = ApiKeyStore(database)
        key = store.add("bench", ["publish"])[1]
        store.close()
        port = free_port()
        # Each phase opens its own sockets: the ones closed before may still hold their slots a moment.
        env = {"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_server.url, "PORTFOLIO_WS_INGEST_ENABLED": "true",
               "PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(args.users * 4)}
        server = Server(serve_command(port, database, "publish"), port, Path(folder) / "server.log", env=env)
        server.start()
        try:
            runs = [asyncio.run(one_run(port, server.pid, redis_server.url, key, sessions, args, run)) for run in range(args.runs)]
        finally:
            server.stop()
            redis_server.stop()
    report = {
        "runs": runs,
        "median": {
            "stream_accepted_per_second": statistics.median(r["burst"]["accepted_per_second"] for r in runs),
            "stream_burst_node_cpu_percent": statistics.median(r["burst"]["node_cpu_percent"] for r in runs),
            "stream_burst_ms_p50": statistics.median(r["burst"]["ms_xadd_to_socket"]["p50"] for r in runs),
            "stream_burst_ms_p99": statistics.median(r["burst"]["ms_xadd_to_socket"]["p99"] for r in runs),
            "stream_paced_ms_p50": statistics.median(r["paced"]["ms_xadd_to_socket"]["p50"] for r in runs),
            "stream_paced_ms_p99": statistics.median(r["paced"]["ms_xadd_to_socket"]["p99"] for r in runs),
            "stream_paced_ms_max": statistics.median(r["paced"]["ms_xadd_to_socket"]["max"] for r in runs),
            "http_accepted_per_second": statistics.median(r["http"]["accepted_per_second"] for r in runs),
            "http_ms_after_response_p99": statistics.median(r["http"]["ms_after_response"]["p99"] for r in runs),
        },
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
