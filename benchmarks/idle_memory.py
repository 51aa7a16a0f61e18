"""Server memory per idle connection: N authenticated sockets, no subscriptions, no feed.

    python benchmarks/idle_memory.py --clients 5000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics

from portfolio_ws.loadtest.run import LoadTestOptions, run_loadtest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compression", action="store_true", help="permessage-deflate negotiated")
    args = parser.parse_args()
    per_conn = []
    for run in range(args.runs):
        report = run_loadtest(LoadTestOptions(clients=args.clients, duration=5, idle=True, seed=run + 1,
                                              compression=args.compression))
        server = report["server"]
        per_conn.append(server["memoryPerConnectionKB"])
        print(f"run {run + 1}: held {report['connectionsHeld']}, RSS before {server['rssBeforeMB']} MB, "
              f"connected {server['rssConnectedMB']} MB, {server['memoryPerConnectionKB']} KB/connection")
    print(f"median: {statistics.median(per_conn):.2f} KB per idle connection ({args.clients} connections)")


if __name__ == "__main__":
    main()
