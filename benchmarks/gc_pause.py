"""How long one full garbage collection stops the server, with every user's recovery buffer full.

A full (generation 2) collection visits every container object the process holds, and the
IOLoop waits for it: with thousands of users each holding ``recovery.max_events`` events, that is
millions of objects. This builds the sans-I/O core as a server of ``--users`` users (5 connections
each, subscribed to everything) would hold it after ``--seconds`` of the simulator's default
event rates, flushing each user's window as the batcher does, then times ``gc.collect()``.

    python benchmarks/gc_pause.py --users 3800 --seconds 300

Prints the container objects the collector tracks and the median pause of ``--runs`` collections.
"""

from __future__ import annotations

import argparse
import gc
from dataclasses import replace
from datetime import datetime
import statistics
import sys
import time
from pathlib import Path

import ujson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portfolio_ws.core.stream import StreamCore  # noqa: E402
from portfolio_ws.settings import Settings, SimulatorSettings  # noqa: E402
from simulator.engine import Simulation  # noqa: E402
from portfolio_ws.market_calendar import NEW_YORK  # noqa: E402

START = datetime(2026, 11, 24, 10, 30, tzinfo=NEW_YORK).timestamp()


def build(users: int, seconds: float) -> tuple[StreamCore, int]:
    settings = Settings()
    limits = replace(settings.limits, total_connections=users * 5)  # as the load test sets it
    core = StreamCore(settings.streaming, limits, settings.recovery, START)
    ids = [f"user-{n}" for n in range(users)]
    sim = Simulation(ids, SimulatorSettings(), START)
    subscribe = ujson.dumps({"type": "subscribe", "channels": ["positions", "orders", "account", "trades"]})
    for user_id in ids:
        for _ in range(5):
            conn = core.open(user_id, None, START)
            core.receive_frame(conn, subscribe, START)
    for event in sim.initial_events():
        core.receive_event(event, START)
    events = 0
    now = START
    while now < START + seconds:
        now += 0.1
        for _, event in sim.advance_to(now):
            core.receive_event(event, now)
            events += 1
        core.flush_due(now)
        core.data_to_send()  # written and dropped, as the service does
    return core, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=3800)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    core, events = build(args.users, args.seconds)
    held = sum(len(user.recovery) for user in core.users.values())
    gc.collect()
    tracked = len(gc.get_objects())
    pauses = []
    for _ in range(args.runs):
        started = time.perf_counter()
        gc.collect()
        pauses.append(time.perf_counter() - started)
    print(f"{args.users} users, {events:,} events over {args.seconds:.0f} s, {held:,} held for recovery")
    print(f"tracked container objects: {tracked:,}")
    print(f"full collection: median {statistics.median(pauses) * 1000:.0f} ms "
          f"(runs: {', '.join(f'{p * 1000:.0f}' for p in pauses)})")


if __name__ == "__main__":
    main()
