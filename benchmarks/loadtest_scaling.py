"""Median load-test figures at several connection counts (users of 5, 1 s batches, simulator feed).

    python benchmarks/loadtest_scaling.py --sizes 1000 5000 10000 19000 --runs 3 --duration 20
    python benchmarks/loadtest_scaling.py --sizes 5000 --tick-rate 2 --out benchmarks/results/rate2.json
    python benchmarks/loadtest_scaling.py --pregenerate --orders-per-day 200 --out benchmarks/results/scaling-served.json

Prints a Markdown table (medians of ``--runs``) and writes every run's report to
``benchmarks/results/scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from portfolio_ws.loadtest.run import LoadTestOptions, run_loadtest

FIGURES = [
    ("connections held", lambda r: r["connectionsHeld"]),
    ("messages/s", lambda r: r["messagesPerSecond"]),
    ("batched p50 ms", lambda r: r["latencyMs"]["batched"]["p50"]),
    ("batched p95 ms", lambda r: r["latencyMs"]["batched"]["p95"]),
    ("batched p99 ms", lambda r: r["latencyMs"]["batched"]["p99"]),
    ("batched max ms", lambda r: r["latencyMs"]["batched"]["max"]),
    ("orders/trades p50 ms", lambda r: r["latencyMs"]["ordersAndTrades"]["p50"]),
    ("orders/trades p99 ms", lambda r: r["latencyMs"]["ordersAndTrades"]["p99"]),
    ("orders/trades messages", lambda r: r["latencyMs"]["ordersAndTrades"]["messages"]),
    ("server latency p99 ms", lambda r: r["serverStats"]["latencyMs"]["p99"]),
    ("tick p50 ms", lambda r: r["serverStats"]["tickMs"]["p50"]),
    ("tick max ms", lambda r: r["serverStats"]["tickMs"]["max"]),
    ("server CPU %", lambda r: r["server"]["cpuPercent"]),
    ("client workers CPU %", lambda r: r["clientCpuPercent"]),
    ("CPU us/message", lambda r: r["server"]["cpuMicrosecondsPerMessage"]),
    ("peak RSS MB", lambda r: r["server"]["peakRssMB"]),
    ("memory per connection KB", lambda r: r["server"]["memoryPerConnectionKB"]),
    ("batch efficiency", lambda r: float(r["serverStats"]["batchEfficiency"].rstrip("%"))),
    ("closes", lambda r: sum(r["closes"].values())),
]


def median(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 19000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tick-rate", type=float, default=1.0, help="scales the simulator's price prints (event rate)")
    parser.add_argument("--orders-per-day", type=float, default=None,
                        help="orders per simulated user a day (default: the simulator's); more orders/trades samples")
    parser.add_argument("--pregenerate", action="store_true",
                        help="the server generates the events before clients connect (its CPU: serving only)")
    parser.add_argument("--uvloop", action="store_true", help="the server on uvloop (server.event_loop)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.json"))
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    for size in args.sizes:
        for run in range(args.runs):
            print(f"{size} connections, run {run + 1}/{args.runs} ...", flush=True)
            env = {"PORTFOLIO_WS_SERVER_EVENT_LOOP": "uvloop"} if args.uvloop else {}
            report = run_loadtest(LoadTestOptions(clients=size, duration=args.duration, workers=args.workers,
                                                  seed=run + 1, server_env=env, tick_rate=args.tick_rate,
                                                  orders_per_day=args.orders_per_day,
                                                  pregenerate=args.pregenerate))
            report.pop("series", None)
            results.setdefault(str(size), []).append(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print("\n| figure (median of %d runs) | %s |" % (args.runs, " | ".join(f"{s:,}" for s in args.sizes)))
    print("|---|" + "---|" * len(args.sizes))
    for name, pick in FIGURES:
        cells = []
        for size in args.sizes:
            values = []
            for report in results[str(size)]:
                try:
                    values.append(pick(report))
                except (KeyError, TypeError):
                    values.append(None)
            cells.append(str(median(values)))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
