"""What a simulator checkpoint costs the feed leader (docs/scaling.md, Failover and recovery): the
time to take one (encoding the simulation stops the IOLoop that long), its size in Redis, and the
time a successor needs to read it back, for 100, 1,000 and 5,000 simulated users a simulated minute
into a session. Medians of ``--runs`` runs. The figures are of this machine (shared, noisy).

    python benchmarks/checkpoint_cost.py [--runs 5] [--users 100 1000 5000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from portfolio_ws.settings import SimulatorSettings
from simulator.checkpoint import Checkpoint
from simulator.clock import SimClock
from simulator.engine import Simulation

RESULTS = Path(__file__).parent / "results" / "checkpoint_cost.json"


def measure(users: int, runs: int) -> dict[str, float]:
    settings = SimulatorSettings()
    start = SimClock.from_settings(settings, time.time()).start
    sim = Simulation([f"user-{i}" for i in range(users)], settings, start)
    sim.initial_events()
    sim.advance_to(start + 60)
    takes, reads, size = [], [], 0
    for _ in range(runs):
        began = time.perf_counter()
        raw = Checkpoint("bench", 0, {}, sim).encode()
        takes.append(time.perf_counter() - began)
        began = time.perf_counter()
        Checkpoint.decode(raw)
        reads.append(time.perf_counter() - began)
        size = len(raw)
    return {"users": users, "take_ms": round(statistics.median(takes) * 1000, 1),
            "read_ms": round(statistics.median(reads) * 1000, 1), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--users", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()
    rows = [measure(n, args.runs) for n in args.users]
    for row in rows:
        print(f"{row['users']:>6} users: take {row['take_ms']:>7.1f} ms, read {row['read_ms']:>7.1f} ms, "
              f"{row['bytes'] / 1e6:6.1f} MB")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": args.runs, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
