"""Event rates the simulator produces at its defaults, against the API document's figures.

Simulates ``--users`` users over ``--days`` sessions and prints, per position per session minute
(positions held all along), per account per session minute, and per user per day, the minimum,
median and maximum; plus how often each order status occurred.

    python benchmarks/simulator_rates.py --users 20 --days 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portfolio_ws.core.events import AccountUpdate, OrderUpdate, PositionUpdate, TradeExecuted  # noqa: E402
from portfolio_ws.settings import SimulatorSettings  # noqa: E402
from simulator import Simulation  # noqa: E402
from portfolio_ws import market_calendar as cal  # noqa: E402


def summary(values: list[int]) -> str:
    return f"min {min(values)}, median {statistics.median(values):g}, mean {statistics.fmean(values):.1f}, max {max(values)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2025-03-03T09:30")
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=cal.NEW_YORK).timestamp()
    sim = Simulation([f"user-{i}" for i in range(args.users)], SimulatorSettings(seed=args.seed), start)
    initial = sim.initial_events()
    end = start
    for _ in range(args.days):
        end = cal.next_session(end).close
    events = sim.advance_to(end + 1)

    traded = {(e.user_id, e.symbol) for _, e in events if isinstance(e, TradeExecuted)}
    held = {(e.user_id, e.symbol) for e in initial if isinstance(e, PositionUpdate)} - traded
    per_position: dict[tuple[str, str, int], int] = defaultdict(int)
    per_account: dict[tuple[str, int], int] = defaultdict(int)
    minutes: set[int] = set()
    for t, e in events:
        session = cal.session_at(t)
        if session is None:
            continue
        minute = int((t - session.open) // 60)
        if session.open + (minute + 1) * 60 > session.close:
            continue
        key = int(session.open) + minute * 60
        minutes.add(key)
        if isinstance(e, PositionUpdate):
            per_position[(e.user_id, e.symbol, key)] += 1
        elif isinstance(e, AccountUpdate):
            per_account[(e.user_id, key)] += 1
    position_counts = [per_position[(u, s, m)] for u, s in held for m in minutes]
    account_counts = [per_account[(f"user-{i}", m)] for i in range(args.users) for m in minutes]
    trades = Counter((e.user_id, cal.local_date(e.executed_at.timestamp()))
                     for _, e in events if isinstance(e, TradeExecuted))
    trade_counts = [trades[(f"user-{i}", day)] for i in range(args.users)
                    for day in {cal.local_date(m) for m in minutes}]
    statuses = Counter(e.status for _, e in events if isinstance(e, OrderUpdate))
    print(f"{args.users} users, {args.days} sessions from {args.start} (seed {args.seed}), {len(events):,} events")
    print(f"position updates per position per minute ({len(held)} positions held throughout): {summary(position_counts)}")
    print(f"account updates per account per minute: {summary(account_counts)}")
    print(f"trades per user per day: {summary(trade_counts)}")
    print(f"order statuses: {dict(statuses)}")


if __name__ == "__main__":
    main()
