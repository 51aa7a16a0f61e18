"""Server memory with 200 stalled readers: clients that subscribe and then never read.

A server process streams a steady flood of ~8 KB trade events (immediate, never coalesced or
dropped) to every user. Phases, with the server's RSS and open fds sampled every second:

1. idle     - the flood runs, nobody is connected (users keep state, accumulate nothing);
2. reading  - 200 readers (40 users x 5) read everything;
3. stalled  - the same 200 sockets' worth of clients stop reading (tiny SO_RCVBUF, reading paused);
              each stays stalled ``--stall`` seconds, then drops and comes back stalled again
              (the server closes it 1013 long before: what the kernel buffers take, plus 1 MiB);
              10 healthy readers (2 more users) keep reading throughout;
4. after    - everyone gone, the flood goes on.

Without a bound, every stalled socket would queue everything published to its user. With
``streaming.max_outbound_bytes`` (1 MiB) each is closed 1013 once it has 1 MiB unread, so RSS
stays flat however long the stall lasts.

    python benchmarks/stalled_readers.py                      # ~2.5 minutes
    python benchmarks/stalled_readers.py --stalled-seconds 300 --out stalled.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability_common import (Server, free_port, make_users_and_sessions, open_client,  # noqa: E402
                                           run_against, write_report)
from portfolio_ws.loadtest.wsclient import LoadClient  # noqa: E402

SUBSCRIBE = '{"type":"subscribe","channels":["positions","orders","account","trades"]}'


# ---- the server side (run in its own process with --serve) -----------------------------------
def serve(port: int, database: str, rate: float, size: int) -> None:
    from portfolio_ws.bus import EventBus
    from portfolio_ws.config import load_settings
    from portfolio_ws.core.events import TradeExecuted
    from portfolio_ws.core.health import FeedHealth
    from portfolio_ws.feeds import Feed
    from portfolio_ws.logs import configure
    from portfolio_ws.server.runner import serve as run_server

    class FloodFeed(Feed):
        """``rate`` trade events a second, round robin over every user, each ~``size`` bytes."""

        source = "flood"

        def __init__(self, user_ids: list[str]) -> None:
            self.user_ids = user_ids
            self.task: asyncio.Task[None] | None = None
            self.last: float | None = None
            self.template = TradeExecuted("u", "t", "FLOOD", "buy", Decimal("1"), Decimal("100.00"),
                                          datetime(2026, 1, 5, 15, tzinfo=timezone.utc), None, "x" * size, "o")

        async def start(self, bus: EventBus) -> None:
            self.task = asyncio.create_task(self.run(bus))

        async def run(self, bus: EventBus) -> None:
            n = 0
            started = time.monotonic()
            while True:
                due = int((time.monotonic() - started) * rate)
                while n < due:
                    user = self.user_ids[n % len(self.user_ids)]
                    bus.publish(replace(self.template, user_id=user, trade_id=f"t{n}"))
                    n += 1
                self.last = time.time()
                await asyncio.sleep(0.01)

        async def stop(self) -> None:
            if self.task is not None:
                self.task.cancel()

        def health(self) -> FeedHealth:
            return FeedHealth("flood", True, self.last, market_open=False)

    settings = load_settings(None, os.environ, overrides={"server.port": port, "auth.database": database, "feed.source": "none",
                                        "limits.total_connections": 2000, "limits.connections_per_user": 10,
                                        "logging.level": "WARNING"})
    configure(settings.logging)
    asyncio.run(run_server(settings, feed_factory=lambda users: FloodFeed([u.user_id for u in users.list()])))


# ---- the client side ------------------------------------------------------------------------
class Readers:
    def __init__(self, port: int) -> None:
        self.port = port
        self.clients: list[LoadClient] = []
        self.messages = 0
        self.bytes = 0
        self.closes: dict[int, int] = {}
        self.stopping = False

    def on_message(self, data: bytes) -> None:
        self.messages += 1
        self.bytes += len(data)

    def on_close(self, client: LoadClient) -> None:
        code = client.close_code or 0
        self.closes[code] = self.closes.get(code, 0) + 1

    async def reader(self, cookie: str) -> LoadClient:
        client = await open_client(self.port, cookie, self.on_message, lambda c: c.send_text(SUBSCRIBE),
                                   self.on_close)
        self.clients.append(client)
        return client

    async def stalled(self, cookie: str, stall: float) -> None:
        """Connect, subscribe, stop reading; after ``stall`` seconds drop the socket and do it again."""
        while not self.stopping:
            opened = asyncio.get_running_loop().create_future()

            def on_open(client: LoadClient) -> None:
                client.send_text(SUBSCRIBE)
                assert client.transport is not None
                client.transport.pause_reading()  # from now on nothing is read
                if not opened.done():
                    opened.set_result(None)

            client = await open_client(self.port, cookie, lambda data: None, on_open, lambda c: None,
                                       receive_buffer=4096)
            try:
                await asyncio.wait_for(opened, 10)
            except asyncio.TimeoutError:
                pass
            deadline = time.monotonic() + stall
            while not self.stopping and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            if client.transport is not None:
                client.transport.abort()

    def close_all(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 1), "min": min(values), "max": max(values)}


async def drive(args: argparse.Namespace, server: Server, sessions: list[tuple[str, str]]) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    phase = "idle"
    started = time.monotonic()

    async def sampler() -> None:
        while True:
            samples.append({"t": round(time.monotonic() - started, 1), "phase": phase, **server.sample()})
            await asyncio.sleep(1.0)

    sampling = asyncio.create_task(sampler())
    stalled_cookies = [cookie for _, cookie in sessions[:40] for _ in range(5)]
    healthy_cookies = [cookie for _, cookie in sessions[40:42] for _ in range(5)]

    await asyncio.sleep(args.idle_seconds)

    phase = "reading"
    readers = Readers(args.port)
    for cookie in stalled_cookies:
        await readers.reader(cookie)
    mark = (time.monotonic(), readers.messages, readers.bytes)
    await asyncio.sleep(args.reading_seconds)
    reading_rate = (readers.messages - mark[1]) / (time.monotonic() - mark[0])
    reading_bytes = (readers.bytes - mark[2]) / (time.monotonic() - mark[0])
    readers.close_all()

    phase = "stalled"
    stalled = Readers(args.port)
    healthy = Readers(args.port)
    for cookie in healthy_cookies:
        await healthy.reader(cookie)
    tasks = [asyncio.create_task(stalled.stalled(cookie, args.stall)) for cookie in stalled_cookies]
    mark = (time.monotonic(), healthy.messages)
    await asyncio.sleep(args.stalled_seconds)
    healthy_rate = (healthy.messages - mark[1]) / (time.monotonic() - mark[0])
    stalled.stopping = True
    await asyncio.gather(*tasks)
    healthy.close_all()

    phase = "after"
    await asyncio.sleep(args.after_seconds)
    sampling.cancel()

    by_phase = {p: [s for s in samples if s["phase"] == p] for p in ("idle", "reading", "stalled", "after")}
    stalled_start = by_phase["stalled"][0]["t"]
    cycles: dict[int, float] = {}  # the peak RSS of each stall cycle (every socket stalled, filled, dropped)
    for s in by_phase["stalled"]:
        k = int((s["t"] - stalled_start) // args.stall)
        cycles[k] = max(cycles.get(k, 0.0), s["rss_mib"])
    peaks = [cycles[k] for k in sorted(cycles) if (k + 1) * args.stall <= args.stalled_seconds]
    slow_closes = server.log.read_text().count("closing slow consumer")
    per_reader_bytes_per_s = reading_bytes / len(stalled_cookies)
    return {
        "settings": {"rate_events_per_s": args.rate, "event_bytes": args.size, "stalled_readers": 200,
                     "healthy_readers": 10, "stall_seconds": args.stall, "stalled_seconds": args.stalled_seconds,
                     "max_outbound_bytes": 1 << 20},
        "rss_mib": {p: summary([s["rss_mib"] for s in v]) for p, v in by_phase.items() if v},
        "fds": {p: summary([s["fds"] for s in v]) for p, v in by_phase.items() if v},
        "stall_cycle_peak_rss_mib": peaks,
        "growth_first_to_last_cycle_percent": round((peaks[-1] - peaks[0]) / peaks[0] * 100, 1),
        "flat": peaks[-1] <= peaks[0] * 1.10,
        "slow_consumer_closes": slow_closes,
        "reading_phase_messages_per_s": round(reading_rate),
        "reading_phase_bytes_per_reader_per_s": round(per_reader_bytes_per_s),
        "healthy_reader_messages_per_s_while_200_stalled": round(healthy_rate / 10, 1),
        "expected_messages_per_s_per_reader": round(args.rate / 42, 1),
        # A user's sockets share each frame's bytes, so an unbounded queue would grow by a user's stream:
        "unbounded_queue_estimate_mib": round(per_reader_bytes_per_s * 40 * args.stalled_seconds / 2**20),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--database", default="")
    parser.add_argument("--rate", type=float, default=2000.0, help="events a second, all users together")
    parser.add_argument("--size", type=int, default=8000, help="padding of each event, bytes")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--reading-seconds", type=float, default=20.0)
    parser.add_argument("--stalled-seconds", type=float, default=120.0)
    parser.add_argument("--after-seconds", type=float, default=10.0)
    parser.add_argument("--stall", type=float, default=20.0, help="seconds each stalled client stays stalled")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.database, args.rate, args.size)
        return
    with tempfile.TemporaryDirectory() as scratch:
        args.port = free_port()
        database = str(Path(scratch) / "stalled.sqlite3")
        sessions = make_users_and_sessions(database, 42)
        server = Server([sys.executable, __file__, "--serve", "--port", str(args.port), "--database", database,
                         "--rate", str(args.rate), "--size", str(args.size)], args.port, Path(scratch) / "server.log")
        report = run_against(server, lambda: drive(args, server, sessions))
        samples = report.pop("samples")
        write_report(report, None)
        if args.out is not None:
            write_report({**report, "samples": samples}, args.out)


if __name__ == "__main__":
    main()
