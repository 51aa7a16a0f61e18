"""Scale-out on this machine: 1, 2 and 4 cluster nodes on one redis-server, the same users and
events, users spread over the nodes. Measures each node's CPU (its whole process: taking events in
from Redis and delivering them to its sockets), messages delivered, and event-to-client latency.

One run: a fresh redis-server on a free port; ``users`` users with a session each in a fresh SQLite
file (no logins); N ``portfolio-ws serve --feed none`` nodes (``cluster.redis_url``); a client
process holding one socket per user, user ``i`` on node ``i % N`` (a load balancer hashing the user
to a node), subscribed to every channel; then a publisher process puts ``rate`` events a second
(60% position updates, batched; 40% trades, sent at once) for users taken round-robin through its
own RedisBus, as a feed leader would. After ``warmup`` seconds, node CPU (/proc) and client
messages are counted for ``seconds``. Runs alternate 1, 2, 4 nodes so a noisy spell of the shared
machine falls on all of them; figures are medians over ``runs``, and the CPU share is also given run
by run (each count's run i, back to back). ``--pin`` puts the nodes on the first CPU and
redis-server, the clients and the publisher on the others, as on machines of their own (on a
2-core machine the 4 nodes then share one core).

    python benchmarks/cluster_scaling.py                          # 1,000 users, 1,000 events/s, 3 runs each
    python benchmarks/cluster_scaling.py --nodes 1,4 --runs 5 --pin      # the load off the nodes' core
    python benchmarks/cluster_scaling.py --users 400 --rate 800 --runs 1 --out /tmp/scaling.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.reliability_common import Server, free_port, make_users_and_sessions  # noqa: E402

NODE_COUNTS = (1, 2, 4)


def cpu_seconds(pid: int) -> float:
    user, system, _ = cpu_parts(pid)
    return user + system


def cpu_parts(pid: int) -> tuple[float, float, int]:
    """(user CPU s, kernel CPU s, wake-ups): a wake-up is a voluntary context switch, the process
    sleeping in epoll until its next input or timer."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status") as f:
        switches = next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, switches


# ---- the publisher process: a feed leader's share of the work, nothing else ------------------------
async def publish(redis_url: str, users: list[str], rate: float, seconds: float, seed: int) -> None:
    from portfolio_ws.bus.redis import RedisBus
    from portfolio_ws.core.events import PositionUpdate, TradeExecuted

    bus = RedisBus(redis_url, node_id="bench-feed")
    await bus.start()
    rng = random.Random(seed)
    started = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - started) < seconds:
        now = datetime.now(timezone.utc)
        while n < elapsed * rate:  # on schedule: the events due by now
            user = users[n % len(users)]
            n += 1
            price = Decimal(rng.randrange(10000, 30000)) / 100
            if rng.random() < 0.6:
                qty = Decimal(rng.randrange(1, 500))
                bus.publish(PositionUpdate(user, rng.choice(["AAPL", "MSFT", "NVDA", "TSLA"]), qty, price,
                                           Decimal("150.00"), (price - 150) * qty, Decimal("1.5"), price * qty,
                                           "long", "bench", now))
            else:
                bus.publish(TradeExecuted(user, f"t{n}", "NVDA", "buy", Decimal(10), price, now,
                                          None, "bench", f"o{n}"))
        await asyncio.sleep(0.01)
    await bus.close()


# ---- the client process: one socket per user, counting what arrives ---------------------------------
async def clients(plan: list[tuple[int, str]], seconds: float, out: Path) -> None:
    import websockets

    arrivals: list[float] = []        # arrival time of every data message
    latencies: list[tuple[float, float]] = []   # (arrival, trade executedAt -> arrival)
    ready = 0

    async def one(port: int, session: str) -> None:
        nonlocal ready
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/portfolio", max_size=None, open_timeout=60,
                                      additional_headers={"Cookie": f"session={session}"}) as ws:
            await ws.send(json.dumps({"type": "subscribe", "channels": ["positions", "orders", "account", "trades"]}))
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "snapshot":
                    ready += 1
                    if ready == len(plan):
                        print("READY", flush=True)
                if "seq" not in msg or msg["type"] == "snapshot":
                    continue
                now = time.time()
                arrivals.append(now)
                trades = [msg["data"]] if msg["type"] == "trade_executed" else msg["data"].get("trades", []) \
                    if msg["type"] == "batch" else []
                for t in trades:
                    at = datetime.fromisoformat(t["executedAt"].replace("Z", "+00:00")).timestamp()
                    latencies.append((now, now - at))

    tasks = [asyncio.create_task(one(port, session)) for port, session in plan]
    done, _ = await asyncio.wait(tasks, timeout=seconds)
    failed = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    if failed:
        print(f"{len(failed)} sockets failed, e.g. {failed[0]!r}", file=sys.stderr, flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.write_text(json.dumps({"arrivals": arrivals, "latencies": latencies}))


# ---- one run -------------------------------------------------------------------------------------
def one_run(nodes: int, users: int, rate: float, warmup: float, seconds: float, seed: int,
            scratch: Path, idle: float = 5.0, pin: bool = False) -> dict[str, Any]:
    everywhere = os.sched_getaffinity(0)
    nodes_cpus, load_cpus = ({min(everywhere)}, everywhere - {min(everywhere)}) if pin else (everywhere, everywhere)
    os.sched_setaffinity(0, load_cpus)  # redis-server, clients and publisher inherit it
    redis_port = free_port()
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                              "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    database = str(scratch / f"n{nodes}-{seed}.sqlite3")
    sessions = make_users_and_sessions(database, users)
    config = scratch / "empty.yaml"
    config.write_text("{}\n")
    servers: list[Server] = []
    feeder = client = None
    try:
        for i in range(nodes):
            port = free_port()
            env = {"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_url, "PORTFOLIO_WS_CLUSTER_NODE_ID": f"bench-{i + 1}",
                   "PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(users + 100),
                   "PORTFOLIO_WS_LOGGING_LEVEL": "WARNING"}
            servers.append(Server([sys.executable, "-m", "cli", "serve", "--config", str(config), "--port", str(port),
                                   "--database", database, "--feed", "none"], port,
                                  scratch / f"node-{nodes}-{i}.log", env))
        os.sched_setaffinity(0, nodes_cpus)
        for server in servers:
            server.start(ready_within=60)
        os.sched_setaffinity(0, load_cpus)
        plan = [(servers[i % nodes].port, session) for i, (_, session) in enumerate(sessions)]
        plan_file, client_out = scratch / "plan.json", scratch / f"clients-{nodes}-{seed}.json"
        plan_file.write_text(json.dumps(plan))
        total = idle + warmup + seconds + 30  # the clients outlive the measured window
        client = subprocess.Popen([sys.executable, __file__, "--role", "clients", "--plan", str(plan_file),
                                   "--seconds", str(total), "--out", str(client_out)],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None
        if client.stdout.readline().strip() != "READY":  # every socket has its snapshot
            logs = "".join(s.log.read_text()[-1500:] for s in servers)
            raise RuntimeError(f"clients did not connect; the nodes said: {logs}")
        # Each node's CPU with its sockets open and no events: what it costs to exist (timers,
        # pings, Redis liveness), so the events' own share can be told apart.
        idle_before = {s.pid: cpu_parts(s.pid) for s in servers}
        time.sleep(idle)
        idle_after = {s.pid: cpu_parts(s.pid) for s in servers}
        idle_cpu = [100 * (sum(idle_after[s.pid][:2]) - sum(idle_before[s.pid][:2])) / idle for s in servers]
        idle_wakeups = [(idle_after[s.pid][2] - idle_before[s.pid][2]) / idle for s in servers]
        users_file = scratch / "users.json"
        users_file.write_text(json.dumps([uid for uid, _ in sessions]))
        feeder = subprocess.Popen([sys.executable, __file__, "--role", "publisher", "--redis", redis_url,
                                   "--users-file", str(users_file), "--rate", str(rate),
                                   "--seconds", str(warmup + seconds + 2), "--seed", str(seed)], cwd=ROOT)
        time.sleep(warmup)  # the measured window starts: a fixed time after the publisher, on purpose
        window_start = time.time()
        before = {s.pid: cpu_seconds(s.pid) for s in servers} | {redis.pid: cpu_seconds(redis.pid)}
        parts_before = {s.pid: cpu_parts(s.pid) for s in servers}
        taken_before = [s.stats()["totalEventsEmitted"] for s in servers]
        time.sleep(seconds)
        window_end = time.time()
        spent = {pid: cpu_seconds(pid) - before[pid] for pid in before}
        parts = {s.pid: [b - a for a, b in zip(parts_before[s.pid], cpu_parts(s.pid))] for s in servers}
        taken = [s.stats()["totalEventsEmitted"] - b for s, b in zip(servers, taken_before)]
        feeder.wait(timeout=60)
        client.wait(timeout=total + 60)
        got = json.loads(client_out.read_text())
    finally:
        for proc in (feeder, client):
            if proc is not None and proc.poll() is None:
                proc.kill()
        for server in servers:
            server.stop()
        redis.terminate()
        redis.wait()
        os.sched_setaffinity(0, everywhere)
    messages = sum(1 for at in got["arrivals"] if window_start <= at < window_end)
    lat = sorted(v for at, v in got["latencies"] if window_start <= at < window_end)
    node_cpu = [100 * spent[s.pid] / seconds for s in servers]
    # Each event goes to the one node its user is on, so the nodes' sum is the cluster's events.
    # The publisher and clients share this busy machine and don't always keep up: CPU per node is
    # compared per 1,000 of the cluster's events, i.e. for the same events.
    cluster_events = sum(taken)
    per_thousand = [1000 * spent[s.pid] * 1000 / cluster_events if cluster_events else 0.0 for s in servers]
    return {
        "nodes": nodes, "users": users, "rate": rate, "seconds": seconds, "pinned": pin,
        "nodeCpuPercent": [round(v, 1) for v in node_cpu],           # each node, % of one core
        "nodeCpuPercentMean": round(statistics.mean(node_cpu), 1),
        "idleNodeCpuPercentMean": round(statistics.mean(idle_cpu), 1),  # sockets open, no events
        "idleNodeWakeupsPerSecond": round(statistics.mean(idle_wakeups), 1),
        # the nodes' CPU split: Python (user) and the kernel (socket reads and writes, epoll)
        "nodeUserCpuPercentMean": round(statistics.mean(100 * parts[s.pid][0] / seconds for s in servers), 1),
        "nodeKernelCpuPercentMean": round(statistics.mean(100 * parts[s.pid][1] / seconds for s in servers), 1),
        "nodeWakeupsPerSecond": round(statistics.mean(parts[s.pid][2] / seconds for s in servers), 1),
        # the events' own CPU: with events, less idle
        "intakeCpuPercentMean": round(statistics.mean(node_cpu) - statistics.mean(idle_cpu), 1),
        "redisCpuPercent": round(100 * spent[redis.pid] / seconds, 1),
        "eventsTakenInPerNode": taken,                                   # in the window
        "clusterEventsPerSecond": round(cluster_events / seconds, 1),
        # each node's CPU (ms) per 1,000 events of the whole cluster: "for the same events"
        "nodeCpuMsPerThousandClusterEvents": round(statistics.mean(per_thousand), 2),
        "messagesPerSecond": round(messages / seconds, 1),
        "tradeLatencyMs": {"p50": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
                           "p99": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None,
                           "samples": len(lat)},
    }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["main", "publisher", "clients"], default="main")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0, help="events a second, all users together")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nodes", default=",".join(map(str, NODE_COUNTS)),
                        help="node counts to run, comma-separated (the first is the baseline of the shares)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cluster_scaling.json")
    parser.add_argument("--pin", action="store_true",
                        help="nodes on the first CPU, redis-server and the load (clients, publisher) on the "
                             "others, as on machines of their own: the load's work and caches off the nodes' core")
    parser.add_argument("--redis")
    parser.add_argument("--users-file", type=Path)
    parser.add_argument("--plan", type=Path)
    args = parser.parse_args()
    if args.role == "publisher":
        asyncio.run(publish(args.redis, json.loads(args.users_file.read_text()), args.rate, args.seconds, args.seed))
        return
    if args.role == "clients":
        asyncio.run(clients([tuple(p) for p in json.loads(args.plan.read_text())], args.seconds, args.out))
        return
    counts = tuple(int(n) for n in args.nodes.split(","))
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="portfolio-ws-scaling-") as scratch:
        for run in range(args.runs):
            for nodes in counts:  # alternating, so noise falls on every count alike
                print(f"{nodes} node(s), run {run + 1}/{args.runs} ...", flush=True)
                result = one_run(nodes, args.users, args.rate, args.warmup, args.seconds, run + args.seed,
                                 Path(scratch), pin=args.pin)
                print("   ", json.dumps(result), flush=True)
                results.setdefault(str(nodes), []).append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n| medians of {args.runs} runs; {args.users:,} users, {args.rate:,.0f} events/s offered | "
          + " | ".join(f"{n} node{'s' if n > 1 else ''}" for n in counts) + " |")
    print("|---|" + "---|" * len(counts))
    rows = [("events taken in / s, whole cluster", lambda r: r["clusterEventsPerSecond"]),
            ("events taken in / s, per node", lambda r: statistics.mean(r["eventsTakenInPerNode"]) / r["seconds"]),
            ("CPU per node, % of one core", lambda r: r["nodeCpuPercentMean"]),
            ("  of it idle (sockets open, no events)", lambda r: r["idleNodeCpuPercentMean"]),
            ("  of it in the kernel", lambda r: r.get("nodeKernelCpuPercentMean", 0)),
            ("node wake-ups / s (idle)", lambda r: r.get("idleNodeWakeupsPerSecond", 0)),
            ("node wake-ups / s (with events)", lambda r: r.get("nodeWakeupsPerSecond", 0)),
            ("CPU per node, ms per 1,000 cluster events", lambda r: r["nodeCpuMsPerThousandClusterEvents"]),
            ("messages delivered / s, whole cluster", lambda r: r["messagesPerSecond"]),
            ("trade latency p50, ms", lambda r: r["tradeLatencyMs"]["p50"]),
            ("trade latency p99, ms", lambda r: r["tradeLatencyMs"]["p99"]),
            ("redis-server CPU, % of one core", lambda r: r["redisCpuPercent"])]
    for name, pick in rows:
        print(f"| {name} | " + " | ".join(str(median([pick(r) for r in results[str(n)]])) for n in counts) + " |")
    one = median([r["nodeCpuMsPerThousandClusterEvents"] for r in results[str(counts[0])]])
    for n in counts[1:]:
        share = median([r["nodeCpuMsPerThousandClusterEvents"] for r in results[str(n)]]) / one if one else 0
        # Each run's pair (the counts run back to back), so a noisy spell falls on both of a pair.
        paired = [b["nodeCpuMsPerThousandClusterEvents"] / a["nodeCpuMsPerThousandClusterEvents"]
                  for a, b in zip(results[str(counts[0])], results[str(n)]) if a["nodeCpuMsPerThousandClusterEvents"]]
        print(f"{n} nodes: CPU per node {share:.0%} of the {counts[0]}-node figure, for the same events "
              f"(run by run: {', '.join(f'{v:.0%}' for v in paired)}; median {statistics.median(paired):.0%})")

if __name__ == "__main__":
    main()
