"""Events a second one node takes through ``POST /api/v1/publish``, and the latency to the sockets.

A ``portfolio-ws serve --feed publish`` process; ``--users`` users with one socket each (subscribed
to every channel) in this process; then ``--events`` trades (round-robin over the users) published
in batches of ``--batch`` by ``portfolio_ws.publish.AsyncPublisher``, one request at a time.

Reported per run, and the median over ``--runs``: events accepted per second of HTTP time (events /
the summed request times), and for every trade the time from its batch's response to its arrival on
the socket (negative when it arrived before the response was read: the server writes the sockets
before it answers), p50/p99/max, plus from the request's start. The machine is shared: see the
notes in docs/performance.md.

    python benchmarks/publish_throughput.py                 # ~1 minute
    python benchmarks/publish_throughput.py --events 10000 --batch 500 --runs 3 --out publish.json
    python benchmarks/publish_throughput.py --cluster 2     # two nodes on a private redis-server

With ``--cluster N``, N ``serve`` processes share a redis-server started here (cluster mode); every
user has one socket on each node, batches go to the nodes in turn, and every trade is timed on
every socket (so half of them crossed from the other node through Redis); ``delivered_once`` says
each trade reached each socket exactly once.
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
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability_common import (Server, free_port, make_users_and_sessions, open_client,  # noqa: E402
                                           serve_command, write_report)
from portfolio_ws.auth.apikeys import ApiKeyStore  # noqa: E402
from portfolio_ws.publish import AsyncPublisher  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

SUBSCRIBE = '{"type":"subscribe","channels":["positions","orders","account","trades"]}'


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def one_run(ports: list[int], key: str, sessions: list[tuple[str, str]], events: int, batch: int,
                  run: int) -> dict[str, Any]:
    """Each user has one socket on every node of ``ports``; batch ``i`` goes to ``ports[i % len]``."""
    arrived: dict[tuple[str, int], float] = {}  # (trade id, socket's node) -> first arrival
    repeats = 0  # a trade seen twice on one socket
    expected = events * len(ports)
    all_in = asyncio.Event()
    snapshots = 0
    ready = asyncio.Event()  # every socket has its snapshot: what follows comes as events

    def receiver(node: int) -> Callable[[bytes], None]:
        def on_message(raw: bytes) -> None:
            nonlocal snapshots, repeats
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "snapshot":
                snapshots += 1
                if snapshots == len(sessions) * len(ports):
                    ready.set()
            trades = ([message["data"]] if message["type"] == "trade_executed"
                      else message["data"].get("trades", []) if message["type"] == "batch" else [])
            for trade in trades:
                if (trade["tradeId"], node) in arrived:
                    repeats += 1
                arrived.setdefault((trade["tradeId"], node), now)
            if len(arrived) >= expected:
                all_in.set()
        return on_message

    clients = []

    def on_open(client: Any) -> None:
        client.send_text(SUBSCRIBE)

    for node, port in enumerate(ports):
        for _, cookie in sessions:
            clients.append(await open_client(port, cookie, receiver(node), on_open, lambda c: None))
    await asyncio.wait_for(ready.wait(), 30)
    items = [{"type": "trade", "userId": sessions[n % len(sessions)][0], "id": f"r{run}-{n}",
              "data": {"tradeId": f"r{run}-{n}", "symbol": "NVDA", "side": "buy", "quantity": "1",
                       "price": "520.50", "executedAt": "2026-01-05T15:30:00Z"}} for n in range(events)]
    sent_at: dict[str, tuple[float, float]] = {}
    http_seconds = 0.0
    publishers = [AsyncPublisher(f"http://127.0.0.1:{port}", key, batch_size=batch) for port in ports]
    try:
        for number, start in enumerate(range(0, events, batch)):
            chunk = items[start:start + batch]
            began = time.perf_counter()
            result = await publishers[number % len(ports)].publish(chunk)
            answered = time.perf_counter()
            http_seconds += answered - began
            assert len(result.accepted) == len(chunk), result.rejected[:3]
            for item in chunk:
                sent_at[item["id"]] = (began, answered)
    finally:
        for publisher in publishers:
            await publisher.close()
    await asyncio.wait_for(all_in.wait(), 60)
    for client in clients:
        client.close()
    after_response = [(at - sent_at[trade][1]) * 1000 for (trade, _), at in arrived.items()]
    after_request = [(at - sent_at[trade][0]) * 1000 for (trade, _), at in arrived.items()]
    return {
        "events": events, "batch": batch, "users": len(sessions), "nodes": len(ports),
        "accepted_per_second": round(events / http_seconds),
        "ms_after_response": {"p50": round(percentile(after_response, 50), 2),
                              "p99": round(percentile(after_response, 99), 2),
                              "max": round(max(after_response), 2)},
        "ms_after_request_start": {"p50": round(percentile(after_request, 50), 2),
                                   "p99": round(percentile(after_request, 99), 2)},
        "delivered_once": len(arrived) == expected and repeats == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cluster", type=int, default=0, metavar="NODES",
                        help="NODES serve processes on one redis-server (cluster mode); each user has a socket "
                             "on every node, batches go to the nodes in turn")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = str(Path(folder) / "bench.sqlite3")
        sessions = make_users_and_sessions(database, args.users)
        store = ApiKeyStore(database)
        key = store.add("bench", ["publish"])[1]
        store.close()
        redis_server = RedisServer(Path(folder) / "redis").start() if args.cluster else None
        servers = []
        for node in range(args.cluster or 1):
            port = free_port()
            # Slots are counted cluster-wide; a run's closed sockets may hold theirs a moment into the next.
            env = ({"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_server.url, "PORTFOLIO_WS_CLUSTER_NODE_ID": f"node-{node}",
                    "PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(args.users * 4 * args.cluster)}
                   if redis_server is not None else {})
            servers.append(Server(serve_command(port, database, "publish"), port,
                                  Path(folder) / f"server-{node}.log", env=env))
        try:
            for server in servers:
                server.start()
            ports = [server.port for server in servers]
            runs = [asyncio.run(one_run(ports, key, sessions, args.events, args.batch, run)) for run in range(args.runs)]
        finally:
            for server in servers:
                server.stop()
            if redis_server is not None:
                redis_server.stop()
    report = {
        "runs": runs,
        "median": {
            "accepted_per_second": statistics.median(r["accepted_per_second"] for r in runs),
            "ms_after_response_p50": statistics.median(r["ms_after_response"]["p50"] for r in runs),
            "ms_after_response_p99": statistics.median(r["ms_after_response"]["p99"] for r in runs),
            "ms_after_request_start_p99": statistics.median(r["ms_after_request_start"]["p99"] for r in runs),
        },
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
