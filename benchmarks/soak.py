"""Soak: a server under moderate, steady load for a long time; does its memory or fd count grow?

A ``portfolio-ws serve --feed simulator`` process streams simulated portfolios (60x speed by default,
so the run crosses market closes and opens) to ``--readers`` WebSocket connections that read
everything. On top, ``--churn`` connections a second are dropped and opened again (a fresh
subscribe and snapshot each time), so the connect/disconnect paths run tens of thousands of times.
The server's RSS and open file descriptors are sampled every ``--sample-seconds`` from /proc.

Reported: the samples, and growth after warm-up: the median of the last minute against the median
of the first minute after ``--warmup`` seconds (target: at most 10% for RSS; fds back to where they
were). Bounded: loopback only, a fixed number of clients, stops by itself after ``--minutes``.

    python benchmarks/soak.py                      # 10 minutes
    python benchmarks/soak.py --minutes 240 --out soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability_common import (Server, free_port, make_users_and_sessions, open_client,  # noqa: E402
                                           run_against, serve_command, write_report)
from portfolio_ws.loadtest.wsclient import LoadClient  # noqa: E402

SUBSCRIBE = '{"type":"subscribe","channels":["positions","orders","account","trades"]}'


class Fleet:
    """Readers that read everything; some are dropped and reopened every second (churn)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.clients: dict[int, LoadClient] = {}
        self.messages = 0
        self.bytes = 0
        self.closes: Counter[str] = Counter()
        self.reopened = 0
        self.connect_errors = 0

    def on_message(self, data: bytes) -> None:
        self.messages += 1
        self.bytes += len(data)

    def on_close(self, client: LoadClient) -> None:
        self.closes[str(client.close_code or "abort")] += 1

    async def open(self, slot: int, cookie: str) -> None:
        try:
            self.clients[slot] = await open_client(self.port, cookie, self.on_message,
                                                   lambda c: c.send_text(SUBSCRIBE), self.on_close)
        except OSError:
            self.connect_errors += 1

    async def churn(self, slot: int, cookie: str) -> None:
        client = self.clients.pop(slot, None)
        if client is not None:
            client.close()
        await self.open(slot, cookie)
        self.reopened += 1

    def close_all(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()


def median_of(samples: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(s[key] for s in samples))


async def drive(args: argparse.Namespace, server: Server, cookies: list[str]) -> dict[str, Any]:
    fleet = Fleet(args.port)
    for slot, cookie in enumerate(cookies):
        await fleet.open(slot, cookie)
    rng = random.Random(args.seed)
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    end = started + args.minutes * 60
    next_sample = started
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_sample:
            samples.append({"t": round(now - started, 1), "messages": fleet.messages, **server.sample()})
            next_sample += args.sample_seconds
        for slot in rng.sample(range(len(cookies)), min(args.churn, len(cookies))):
            await fleet.churn(slot, cookies[slot])
        await asyncio.sleep(1.0)  # the churn rate is per second of wall time, not an await on anything
    stats = server.stats()
    fleet.close_all()

    steady = [s for s in samples if s["t"] >= args.warmup]
    first = [s for s in steady if s["t"] < args.warmup + 60] or steady[:1]
    last = [s for s in steady if s["t"] >= samples[-1]["t"] - 60] or steady[-1:]
    rss_start, rss_end = median_of(first, "rss_mib"), median_of(last, "rss_mib")
    fds_start, fds_end = median_of(first, "fds"), median_of(last, "fds")
    elapsed = samples[-1]["t"] - samples[0]["t"] or 1.0
    return {
        "settings": {"minutes": args.minutes, "readers": len(cookies), "churn_per_second": args.churn,
                     "simulator_speed": args.speed, "warmup_seconds": args.warmup,
                     "sample_seconds": args.sample_seconds},
        "messages_received": fleet.messages,
        "messages_per_second": round(fleet.messages / elapsed, 1),
        "bytes_received": fleet.bytes,
        "reconnects": fleet.reopened,
        "connect_errors": fleet.connect_errors,
        "closes_seen": dict(fleet.closes),
        "server_stats": {**{k: stats.get(k) for k in ("status", "activeConnections", "totalMessagesDelivered",
                                                      "totalEventsEmitted", "totalDisconnects")},
                         "batchEfficiency": stats["performance"]["batchEfficiency"],
                         "latencyMs": stats["performance"]["latencyMs"]},
        "growth_after_warmup": {
            "rss_mib": {"start": rss_start, "end": rss_end, "peak": max(s["rss_mib"] for s in steady),
                        "growth_percent": round((rss_end - rss_start) / rss_start * 100, 1)},
            "fds": {"start": fds_start, "end": fds_end, "max": max(s["fds"] for s in steady)},
            "cpu_seconds": samples[-1]["cpu_s"],
        },
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=3)
    parser.add_argument("--churn", type=int, default=10, help="connections dropped and reopened a second")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds before growth is measured")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.warmup = min(args.warmup, args.minutes * 60 / 3)
    args.port = free_port()
    env = {"PORTFOLIO_WS_SIMULATOR_SPEED": str(args.speed), "PORTFOLIO_WS_SIMULATOR_SEED": str(args.seed),
           "PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(args.users * args.per_user + 100),
           "PORTFOLIO_WS_LOGGING_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory() as scratch:
        database = str(Path(scratch) / "soak.sqlite3")
        sessions = make_users_and_sessions(database, args.users)
        cookies = [cookie for _, cookie in sessions for _ in range(args.per_user)]
        server = Server(serve_command(args.port, database, "simulator"), args.port, Path(scratch) / "server.log", env)
        report = run_against(server, lambda: drive(args, server, cookies))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
