"""Events per second the simulator core generates on one core (docs/simulator.md quotes it).

Builds a ``Simulation`` of ``--users`` users (not timed), then times ``advance_to`` over
``--seconds`` of simulated session time in 0.1 s steps (as the feed does, events dropped after
counting), starting mid-morning where the print rate is close to the day's mean. Repeats ``--runs``
times with fresh simulations and prints the median rate per CPU second of this process (one core;
robust to a busy machine) and per wall second. Event construction includes the event model's
own validation (``portfolio_ws.core.events``).

    python benchmarks/simulator_throughput.py --users 10000 --symbols 30
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portfolio_ws.settings import SimulatorSettings  # noqa: E402
from simulator import Simulation  # noqa: E402
from portfolio_ws.market_calendar import NEW_YORK  # noqa: E402

START = datetime(2025, 3, 4, 11, 0, tzinfo=NEW_YORK).timestamp()


def one_run(users: int, symbols: int, seconds: float, seed: int) -> tuple[int, float, float, Counter[str]]:
    sim = Simulation([f"user-{i}" for i in range(users)], SimulatorSettings(seed=seed, symbols=symbols), START)
    sim.initial_events()
    gc.collect()
    kinds: Counter[str] = Counter()
    count, cpu, wall, t = 0, 0.0, 0.0, START
    while t < START + seconds:
        t = min(START + seconds, t + 0.1)
        began, began_cpu = time.perf_counter(), time.process_time()
        events = sim.advance_to(t)
        cpu += time.process_time() - began_cpu
        wall += time.perf_counter() - began
        count += len(events)
        kinds.update(type(event).__name__ for _, event in events)
    return count, cpu, wall, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--symbols", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30.0, help="simulated seconds per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cpu_rates, wall_rates = [], []
    for run in range(args.runs):
        count, cpu, wall, kinds = one_run(args.users, args.symbols, args.seconds, seed=run + 1)
        cpu_rates.append(count / cpu)
        wall_rates.append(count / wall)
        print(f"run {run + 1}: {count} events, {cpu:.2f} s CPU = {count / cpu:,.0f} events/s "
              f"({count / wall:,.0f}/s wall)  {dict(kinds)}")
    print(f"median: {statistics.median(cpu_rates):,.0f} events/s per CPU second "
          f"({statistics.median(wall_rates):,.0f}/s wall; {args.users} users, {args.symbols} symbols, "
          f"{args.seconds:g} simulated s per run, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
