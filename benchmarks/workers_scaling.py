"""``serve --workers 1`` against ``--workers 2`` on this machine: the same load through a Redis
cluster of one or two processes on one port.

For each worker count: a private redis-server on a free port, users made in a fresh database (cheap
hashes), ``portfolio-ws serve --workers W --feed simulator`` with ``cluster.redis_url``, then the
load tester against it (``--url``; its clients in their own processes). The CPU of every server
process and of redis-server is read from /proc over the measured window.

    python benchmarks/workers_scaling.py                              # 5,000 connections, 3 runs each
    python benchmarks/workers_scaling.py --clients 2000 --runs 1 --out workers.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability_common import Server, free_port  # noqa: E402
from portfolio_ws.loadtest.run import LoadTestOptions, login_sessions, run_loadtest  # noqa: E402

PASSWORD = "bench-password-1"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def make_users(database: str, count: int) -> None:
    from argon2 import PasswordHasher, profiles

    from portfolio_ws.auth.users import UserStore

    store = UserStore(database, hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    for n in range(1, count + 1):
        store.add(f"bench{n}", PASSWORD)
    store.close()


def one_run(workers: int, clients: int, duration: float, seed: int, scratch: Path) -> dict[str, Any]:
    redis_port = free_port()
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                              "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = str(scratch / f"w{workers}-{seed}.sqlite3")
    users = clients // 5
    make_users(database, users)
    port = free_port()
    config = scratch / "empty.yaml"
    config.write_text("{}\n")
    env = {"PORTFOLIO_WS_CLUSTER_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(clients + 100),
           "PORTFOLIO_WS_STREAMING_TRACE_EVENT_TIME": "true",
           "PORTFOLIO_WS_SIMULATOR_START": LoadTestOptions.start,
           "PORTFOLIO_WS_SIMULATOR_SEED": str(seed),
           "PORTFOLIO_WS_LOGGING_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "cli", "serve", "--config", str(config), "--port", str(port),
           "--database", database, "--feed", "simulator", "--workers", str(workers)]
    server = Server(cmd, port, scratch / f"server-w{workers}.log", env)
    try:
        server.start(ready_within=60)
        time.sleep(1.0)  # let every worker bind before the clients arrive (readiness is one worker's)
        # Log every user in once first: the server re-hashes the cheap test hashes to its own
        # argon2 parameters on a first login (~0.2 s of CPU each), which is not streaming work.
        login_sessions(f"http://127.0.0.1:{port}", "bench", PASSWORD, users)
        procs = ([server.pid] if workers == 1 else children(server.pid)) + [redis.pid]
        before = {pid: cpu_seconds(pid) for pid in procs}
        started = time.monotonic()
        report = run_loadtest(LoadTestOptions(clients=clients, duration=duration, url=f"http://127.0.0.1:{port}",
                                              user_prefix="bench", password=PASSWORD, seed=seed,
                                              out=scratch / "loadtest"))
        elapsed = time.monotonic() - started
        spent = {pid: cpu_seconds(pid) - before[pid] for pid in procs}
    finally:
        server.stop()
        redis.terminate()
        redis.wait()
    server_cpu = sum(v for pid, v in spent.items() if pid != redis.pid)
    messages = report["messagesPerSecond"] * report["measuredSeconds"]
    return {
        "workers": workers, "clients": clients, "connectionsHeld": report["connectionsHeld"],
        "messagesPerSecond": report["messagesPerSecond"],
        "latencyMs": report["latencyMs"], "closes": report["closes"], "connectErrors": report["connectErrors"],
        # CPU from the first connect to the end (connecting included), as a share of one core
        "serverCpuPercent": round(100 * server_cpu / elapsed, 1),
        "redisCpuPercent": round(100 * spent[redis.pid] / elapsed, 1),
        "serverCpuMicrosecondsPerMessage": round(server_cpu / messages * 1e6, 1) if messages else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/workers.json"))
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="portfolio-ws-workers-") as scratch:
        for workers in (1, 2):
            for run in range(args.runs):
                print(f"{workers} worker(s), run {run + 1}/{args.runs} ...", flush=True)
                results.setdefault(str(workers), []).append(
                    one_run(workers, args.clients, args.duration, run + 1, Path(scratch)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n| median of {args.runs} runs, {args.clients:,} connections | 1 worker | 2 workers |")
    print("|---|---|---|")
    for name, pick in [("connections held", lambda r: r["connectionsHeld"]),
                       ("messages/s", lambda r: r["messagesPerSecond"]),
                       ("batched p50 ms", lambda r: r["latencyMs"]["batched"]["p50"]),
                       ("batched p99 ms", lambda r: r["latencyMs"]["batched"]["p99"]),
                       ("server CPU % (all workers)", lambda r: r["serverCpuPercent"]),
                       ("redis-server CPU %", lambda r: r["redisCpuPercent"]),
                       ("server CPU us/message", lambda r: r["serverCpuMicrosecondsPerMessage"])]:
        cells = []
        for workers in ("1", "2"):
            values = [v for v in (pick(r) for r in results[workers]) if v is not None]
            cells.append(str(round(statistics.median(values), 1)) if values else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
