"""Graceful shutdown under load, and the reconnection that follows.

A ``portfolio-ws serve`` process holds 5,000 WebSocket connections (1,000 users x 5, subscribed to
every channel; ``limits.total_connections`` raised). The clients live in this process, the server
in its own. Then:

1. SIGTERM: every client must receive 1001 ``Server shutting down``, and the process must exit
   (code 0) within ``server.drain_seconds``;
2. ``--down`` seconds after the SIGTERM (a supervisor's restart delay; 2 s), the server is started
   again on the same port and database (sessions survive);
3. every client reconnects with full jitter - delay = random(0, min(cap, base x 2^attempt)), base
   1 s, cap 30 s, ``attempt`` counting refused tries - as docs/protocol.md tells clients to.

Reported: the close codes, time to exit, and when each client was back (a histogram in 1 s
buckets from the SIGTERM), with the peak per-second rate: spread over time, not one burst.

    python benchmarks/shutdown_reconnect.py                   # ~1 minute
    python benchmarks/shutdown_reconnect.py --connections 1000 --out shutdown.json
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability_common import (Server, free_port, make_users_and_sessions, open_client,  # noqa: E402
                                           serve_command, write_report)
from portfolio_ws.loadtest.wsclient import LoadClient  # noqa: E402

SUBSCRIBE = '{"type":"subscribe","channels":["positions","orders","account","trades"]}'


class Fleet:
    """The clients: connect, note the close, reconnect with full jitter after a 1001."""

    def __init__(self, port: int, base: float, cap: float, seed: int) -> None:
        self.port = port
        self.base = base
        self.cap = cap
        self.rng = random.Random(seed)
        self.connected = 0
        self.all_connected = asyncio.Event()
        self.target = 0
        self.closes: Counter[str] = Counter()
        self.closed_at: list[float] = []
        self.back_at: list[float] = []
        self.attempts: Counter[int] = Counter()
        self.refused: Counter[str] = Counter()  # reconnect tries refused before the socket opened
        self.reconnecting = False
        self.done = False
        self.tasks: set[asyncio.Task[None]] = set()

    async def connect(self, cookie: str, attempt: int = 0) -> None:
        """One socket. Once its CONNECTED arrives it counts as connected; a 1001 after that starts a
        reconnect. A socket refused before it opened (a 503 at the pending cap, a connection the server
        let go while the restarted server was busy) is retried during the reconnect, as a real client's
        backoff does."""
        opened = False

        def on_message(data: bytes) -> None:
            nonlocal opened
            if opened or b'"CONNECTED"' not in data[:120]:
                return
            opened = True
            self.connected += 1
            if self.reconnecting:
                self.back_at.append(time.time())
                self.attempts[attempt + 1] += 1
            if self.connected >= self.target:
                self.all_connected.set()

        def on_close(client: LoadClient) -> None:
            if opened:
                self.connected -= 1
                self.closes[f"{client.close_code} {client.close_reason}".strip()] += 1
                self.closed_at.append(time.time())
                if client.close_code == 1001 and not self.done:
                    self.spawn(self.reconnect(cookie))
            elif self.reconnecting and not self.done:
                self.refused[str(client.close_code)] += 1
                self.spawn(self.reconnect(cookie, attempt + 1))

        await open_client(self.port, cookie, on_message, lambda c: c.send_text(SUBSCRIBE), on_close)

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reconnect(self, cookie: str, attempt: int = 0) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0, min(self.cap, self.base * 2 ** attempt)))
            try:
                await self.connect(cookie, attempt)
                return
            except OSError:
                attempt += 1  # refused: the server isn't back yet

    async def connect_all(self, cookies: list[str], concurrency: int = 200) -> float:
        self.target = len(cookies)
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)

        async def one(cookie: str) -> None:
            async with gate:
                await self.connect(cookie)

        await asyncio.gather(*(one(cookie) for cookie in cookies))
        await asyncio.wait_for(self.all_connected.wait(), 120)
        return time.monotonic() - started


async def drive(args: argparse.Namespace, scratch: Path, database: str,
                sessions: list[tuple[str, str]]) -> dict[str, Any]:
    users = len(sessions)
    cookies = [cookie for _, cookie in sessions for _ in range(args.per_user)]
    env = {"PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(args.connections + 100),
           "PORTFOLIO_WS_LIMITS_CONNECTIONS_PER_USER": str(args.per_user),
           "PORTFOLIO_WS_SERVER_DRAIN_SECONDS": str(args.drain),
           "PORTFOLIO_WS_LOGGING_LEVEL": "WARNING"}
    server = Server(serve_command(args.port, database), args.port, scratch / "server.log", env)
    server.start()
    fleet = Fleet(args.port, args.base, args.cap, args.seed)
    connect_seconds = await fleet.connect_all(cookies)
    before = server.sample()
    stats = server.stats()

    # 1. SIGTERM under load
    fleet.reconnecting = True
    sigterm_at = time.time()
    server.terminate()
    assert server.proc is not None
    while server.proc.poll() is None and time.time() - sigterm_at < args.drain + 30:
        await asyncio.sleep(0.005)
    exit_seconds = time.time() - sigterm_at
    exit_code = server.proc.returncode
    while len(fleet.closed_at) < args.connections and time.time() - sigterm_at < args.drain + 30:
        await asyncio.sleep(0.01)
    closes = dict(fleet.closes)
    last_close = max(fleet.closed_at) - sigterm_at if fleet.closed_at else None

    # 2. the server comes back on the same port and database, ``--down`` seconds after the SIGTERM
    await asyncio.sleep(max(0.0, args.down - (time.time() - sigterm_at)))
    restarted = Server(serve_command(args.port, database), args.port, scratch / "server2.log", env)
    ready_at = await asyncio.to_thread(restarted.start)  # the clients' timers keep running meanwhile

    # 3. everyone reconnects with full jitter
    fleet.target = args.connections
    fleet.all_connected.clear()
    try:
        await asyncio.wait_for(fleet.all_connected.wait(), args.cap * 3)
    except asyncio.TimeoutError:
        pass
    back = sorted(t - sigterm_at for t in fleet.back_at)
    after = restarted.sample()
    restarted_stats = restarted.stats()
    fleet.done = True
    for client_task in list(fleet.tasks):
        client_task.cancel()
    await asyncio.gather(*fleet.tasks, return_exceptions=True)
    await asyncio.to_thread(restarted.stop)

    buckets = Counter(int(t) for t in back)
    quarter = Counter(int(t * 4) for t in back if t < 6)
    fine = {f"{q / 4:.2f}-{(q + 1) / 4:.2f}s": quarter.get(q, 0) for q in range(0, 24)}
    histogram = {f"{s}-{s + 1}s": buckets.get(s, 0) for s in range(0, int(back[-1]) + 1)} if back else {}
    ready = ready_at - sigterm_at
    return {
        "settings": {"connections": args.connections, "users": users, "per_user": args.per_user,
                     "server_down_seconds": args.down,
                     "drain_seconds": args.drain, "jitter": f"full, base {args.base} s, cap {args.cap} s"},
        "connect_all_seconds": round(connect_seconds, 1),
        "server_before_sigterm": {**before, "active_connections": stats["activeConnections"]},
        "shutdown": {
            "close_codes": closes,
            "all_got_1001": closes.get("1001 Server shutting down", 0) == args.connections,
            "last_close_after_sigterm_s": round(last_close, 2) if last_close is not None else None,
            "process_exit_after_sigterm_s": round(exit_seconds, 2),
            "exit_code": exit_code,
            "exited_within_drain": exit_seconds <= args.drain and exit_code == 0,
        },
        "restart": {"ready_after_sigterm_s": round(ready, 2)},
        "reconnect": {
            "reconnected": len(back),
            "all_back_within_s": round(back[-1], 2) if back else None,
            "all_back_within_30s_of_restart": bool(back) and len(back) == args.connections
            and back[-1] - ready <= 30,
            "first_back_s": round(back[0], 2) if back else None,
            "median_back_s": round(back[len(back) // 2], 2) if back else None,
            "p90_back_s": round(back[int(len(back) * 0.9)], 2) if back else None,
            "peak_per_second": max(buckets.values()) if buckets else 0,
            "attempts_needed": dict(sorted(fleet.attempts.items())),
            "refused_before_open": dict(fleet.refused),
            "histogram_from_sigterm": histogram,
            "first_6s_in_quarter_seconds": fine,
            "server_active_connections_after": restarted_stats["activeConnections"],
            "server_after": after,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--drain", type=float, default=5.0, help="server.drain_seconds")
    parser.add_argument("--base", type=float, default=1.0, help="backoff base, seconds")
    parser.add_argument("--cap", type=float, default=30.0, help="backoff cap, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--down", type=float, default=2.0, help="seconds from SIGTERM to starting again")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        database = str(Path(scratch) / "shutdown.sqlite3")
        sessions = make_users_and_sessions(database, args.connections // args.per_user)
        report = asyncio.run(drive(args, Path(scratch), database, sessions))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
