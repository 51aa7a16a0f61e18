"""Orchestrating a load test: start the server (with the simulator) or target a running one, spread
clients over worker processes, sample the server's CPU and memory, and report.

Latency is end to end on one host clock: the server stamps each data message with when its oldest
and its newest event arrived (``streaming.trace_event_time``), the client subtracts the oldest (batched
channels) or the newest (a message carrying an order or trade, which flushed the window) from when
it parsed it.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import queue
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.stats import percentile as nearest_rank
from .output import write_outputs  # noqa: F401  (the report's files: commands and tests import it from here)
from .worker import Interval, WorkerPlan, worker_main

CHANNELS = ["positions", "orders", "account", "trades"]
WARMUP_SECONDS = 2.0
# The workers stop this long after the measured period, so the intervals covering its end are whole.
STOP_AFTER = 1.5
READY_SECONDS = 180  # generous: with pregenerate, the server makes the whole run's events first


@dataclass
class LoadTestOptions:
    clients: int = 100
    users: int | None = None          # default: clients / 5 (users of 5 connections)
    duration: float = 20.0
    workers: int = 2
    url: str | None = None            # target a running server instead of starting one
    user_prefix: str = "demo"         # with --url: users prefix1..prefixN ...
    password: str | None = None       # ... and their password
    symbols: int = 30
    tick_rate: float = 1.0
    orders_per_day: float | None = None  # per simulated user (None: the simulator's default)
    # Generate the run's events when the server starts (simulator.pregenerate_seconds), so the
    # server's CPU while measured is serving them, not making them (as with a live feed).
    pregenerate: bool = False
    speed: float = 1.0
    # Simulated start: a fixed mid-morning moment of a regular session, so runs on different days
    # (or after the close) see the same market and the same event rates. "latest-open" for a live feel.
    start: str = "2026-11-24T15:30:00Z"
    batch_window_ms: int = 1000
    idle: bool = False                # no feed, no subscriptions: memory per idle connection
    compression: bool = False         # permessage-deflate on the server and every client
    seed: int = 1
    out: Path = Path("loadtest-results")
    server_args: list[str] = field(default_factory=list)
    server_env: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``portfolio-ws serve`` in a process of its own, with users and sessions made up front."""

    def __init__(self, options: LoadTestOptions, users: int, scratch: Path) -> None:
        self.options = options
        self.port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.database = str(scratch / "loadtest.sqlite3")
        self.users = users
        self.scratch = scratch
        self.proc: subprocess.Popen[bytes] | None = None

    def make_sessions(self) -> list[str]:
        from argon2 import PasswordHasher, profiles

        from ..auth.sessions import SessionLifetime
        from ..auth.sessions.sqlite import SQLiteSessionStore
        from ..auth.users import UserStore

        store = UserStore(self.database, hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
        ids = [store.add(f"load{n}", secrets.token_urlsafe(12)).user_id for n in range(1, self.users + 1)]
        store.close()
        sessions = SQLiteSessionStore(self.database, SessionLifetime(86400, 86400))

        async def create() -> list[str]:
            made = [await sessions.create(uid, time.time()) for uid in ids]
            await sessions.close()
            return made

        return asyncio.run(create())

    def start(self, connections: int) -> None:
        o = self.options
        per_user = max(5, math.ceil(connections / max(1, self.users)))
        env = dict(os.environ)
        env.update({
            "PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(connections + 100),
            "PORTFOLIO_WS_LIMITS_CONNECTIONS_PER_USER": str(per_user),
            "PORTFOLIO_WS_STREAMING_TRACE_EVENT_TIME": "true",
            "PORTFOLIO_WS_STREAMING_BATCH_WINDOW_MS": str(o.batch_window_ms),
            "PORTFOLIO_WS_SIMULATOR_SYMBOLS": str(o.symbols),
            "PORTFOLIO_WS_SIMULATOR_TICK_RATE": str(o.tick_rate),
            "PORTFOLIO_WS_SIMULATOR_SPEED": str(o.speed),
            "PORTFOLIO_WS_SIMULATOR_START": o.start,
            "PORTFOLIO_WS_SIMULATOR_SEED": str(o.seed),
            "PORTFOLIO_WS_AUTH_ADMIN_TOKEN": self.token,
            "PORTFOLIO_WS_LOGGING_LEVEL": "WARNING",
            "PORTFOLIO_WS_STREAMING_COMPRESSION": "true" if o.compression else "false",
        })
        if o.orders_per_day is not None:
            env["PORTFOLIO_WS_SIMULATOR_ORDERS_PER_DAY"] = str(o.orders_per_day)
        if o.pregenerate and not o.idle:
            # Enough for connecting (generously), the warm-up and the measured period.
            real_seconds = 60 + connections / 200 + WARMUP_SECONDS + o.duration
            env["PORTFOLIO_WS_SIMULATOR_PREGENERATE_SECONDS"] = str(round(real_seconds * o.speed))
        env.update(o.server_env)
        config = self.scratch / "empty.yaml"
        config.write_text("{}\n")
        cmd = [sys.executable, "-m", "cli", "serve", "--config", str(config), "--port", str(self.port),
               "--database", self.database, "--feed", "none" if o.idle else "simulator", *o.server_args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.scratch / "server.log", "wb"))
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.scratch / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)  # polling for readiness, bounded by the deadline
        raise RuntimeError(f"server did not become ready within {READY_SECONDS} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def stats(self) -> dict[str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/admin/websocket-stats",
                                         headers={"Authorization": f"Bearer {self.token}"})
        return json.loads(urllib.request.urlopen(request, timeout=10).read())  # type: ignore[no-any-return]


def proc_sample(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, RSS bytes, peak RSS bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return cpu, rss, hwm


def percentile(values: list[float], q: float) -> float | None:
    return nearest_rank(sorted(values), q)


def login_sessions(url: str, prefix: str, password: str, users: int) -> list[str]:
    sessions = []
    for n in range(1, users + 1):
        body = json.dumps({"username": f"{prefix}{n}", "password": password}).encode()
        request = urllib.request.Request(url.rstrip("/") + "/api/auth/login", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            cookie = response.headers["Set-Cookie"]
        sessions.append(cookie.split(";", 1)[0].split("=", 1)[1])
    return sessions


def run_loadtest(options: LoadTestOptions, progress: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """Run one load test and return the report (also written to ``options.out``)."""
    o = options
    users = o.users or max(1, math.ceil(o.clients / 5))
    say = progress or (lambda phase, fraction: None)
    with tempfile.TemporaryDirectory(prefix="portfolio-ws-load-") as scratch_name:
        scratch = Path(scratch_name)
        server: ServerProcess | None = None
        if o.url is None:
            server = ServerProcess(o, users, scratch)
            say("creating users and sessions", 0.0)
            sessions = server.make_sessions()
            server.start(o.clients)
            host, port = "127.0.0.1", server.port
        else:
            if not o.password:
                raise ValueError("--url needs --password for the users prefix1..prefixN")
            sessions = login_sessions(o.url, o.user_prefix, o.password, users)
            parts = o.url.split("://", 1)[-1].split("/", 1)[0]
            host, _, port_text = parts.partition(":")
            port = int(port_text or 80)
        try:
            return _drive(o, sessions, host, port, server, say)
        finally:
            if server is not None:
                server.stop()


def _drive(o: LoadTestOptions, sessions: list[str], host: str, port: int, server: ServerProcess | None,
           say: Callable[[str, float], None]) -> dict[str, Any]:
    cookies = [sessions[n % len(sessions)] for n in range(o.clients)]
    ctx = multiprocessing.get_context("spawn")
    reports: Any = ctx.Queue()
    workers = max(1, min(o.workers, o.clients))
    # Workers hold their connections until told to stop (the measured period starts when ALL are
    # connected); the plan's duration only bounds that wait.
    stop = ctx.Event()
    longest = o.duration + WARMUP_SECONDS + READY_SECONDS + 60
    plans = [WorkerPlan(host, port, cookies[i::workers], longest, CHANNELS, not o.idle, o.seed, o.compression)
             for i in range(workers)]
    pid = server.proc.pid if server and server.proc else None
    baseline = proc_sample(pid) if pid else None
    procs = [ctx.Process(target=worker_main, args=(i, plan, reports, stop), daemon=True)
             for i, plan in enumerate(plans)]
    for proc in procs:
        proc.start()
    intervals: list[Interval] = []
    samples: list[dict[str, Any]] = []
    done = 0
    all_ready_at: float | None = None
    ready: dict[int, bool] = {}
    deadline = time.time() + longest + 60
    while done < workers and time.time() < deadline:
        if all_ready_at is not None and time.time() >= all_ready_at + WARMUP_SECONDS + o.duration + STOP_AFTER:
            stop.set()
        try:
            item = reports.get(timeout=1.0)
        except queue.Empty:
            item = False
        if item is None:
            done += 1
            continue
        if isinstance(item, Interval):
            intervals.append(item)
            ready[item.worker] = item.ready
            if all_ready_at is None and len(ready) == workers and all(ready.values()):
                all_ready_at = item.ended
        if pid:
            cpu, rss, hwm = proc_sample(pid)
            samples.append({"at": time.time(), "cpu": cpu, "rss": rss, "hwm": hwm})
        if all_ready_at is None:
            say("connecting", sum(iv.connected for iv in intervals[-workers:]) / max(1, o.clients))
        else:
            say("measuring", min(1.0, (time.time() - all_ready_at) / o.duration))
    stats = server.stats() if server else None
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():  # a worker that outlived the run must not load the next one
            proc.terminate()
            proc.join(timeout=5)
    return _report(o, intervals, samples, baseline, all_ready_at, stats)


def _covering(intervals: list[Interval], moment: float) -> list[Interval]:
    """Each worker's interval that was running at ``moment``."""
    return [iv for iv in intervals if iv.at <= moment < iv.ended]


def _report(o: LoadTestOptions, intervals: list[Interval], samples: list[dict[str, Any]],
            baseline: tuple[float, int, int] | None, ready_at: float | None,
            stats: dict[str, Any] | None) -> dict[str, Any]:
    # The measured period: o.duration seconds from WARMUP_SECONDS after every worker was connected.
    start = (ready_at or 0.0) + WARMUP_SECONDS
    end = start + o.duration
    # A worker's 1 s intervals whose middle falls in the period: per worker, they cover the period.
    steady = [iv for iv in intervals if start <= (iv.at + iv.ended) / 2 < end]
    by_worker: dict[int, float] = {}
    for iv in steady:
        by_worker[iv.worker] = by_worker.get(iv.worker, 0.0) + (iv.ended - iv.at)
    span = max(1e-9, sum(by_worker.values()) / len(by_worker)) if by_worker else 1e-9
    messages = sum(iv.messages for iv in steady)
    data_messages = sum(iv.data_messages for iv in steady)
    batched = [x for iv in steady for x in iv.batched_latency]
    immediate = [x for iv in steady for x in iv.immediate_latency]
    closes: dict[str, int] = {}
    for iv in intervals:
        for key, count in iv.closes.items():
            closes[key] = closes.get(key, 0) + count
    steady_samples = [s for s in samples if start <= s["at"] <= end + STOP_AFTER]
    cpu_seconds = (steady_samples[-1]["cpu"] - steady_samples[0]["cpu"]) if len(steady_samples) > 1 else None
    cpu_span = (steady_samples[-1]["at"] - steady_samples[0]["at"]) if len(steady_samples) > 1 else None
    series = _series(intervals, start, o.duration)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    def latency(values: list[float], worst: float | None, count: int) -> dict[str, Any]:
        return {"p50": ms(percentile(values, 0.5)), "p95": ms(percentile(values, 0.95)),
                "p99": ms(percentile(values, 0.99)), "max": ms(worst), "messages": count}

    rss_connected = None
    if samples and ready_at is not None:
        near = [s for s in samples if s["at"] >= ready_at]
        rss_connected = near[0]["rss"] if near else None
    report: dict[str, Any] = {
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(o).items()},
        "connectionsHeld": min((point["connected"] for point in series), default=0),
        "measuredSeconds": round(span, 1),
        "messagesPerSecond": round(messages / span, 1),
        "dataMessagesPerSecond": round(data_messages / span, 1),
        "bytesPerSecond": round(sum(iv.bytes for iv in steady) / span, 1),
        "wireBytesPerSecond": round(sum(iv.wire_bytes for iv in steady) / span, 1),
        # Two kinds of message, two figures: positions and account wait for the batch window (their
        # latency is about the window), orders and trades go at once (milliseconds). Mixed, a p50
        # would move with the mix, not with the server.
        "latencyMs": {
            "batched": latency(batched, max((iv.batched_max for iv in steady), default=None),
                               sum(iv.batched_count for iv in steady)),
            "ordersAndTrades": latency(immediate, max((iv.immediate_max for iv in steady), default=None),
                                       sum(iv.immediate_count for iv in steady)),
        },
        "closes": closes,
        "connectErrors": sum(iv.connect_errors for iv in intervals),
        # The client workers' own CPU (% of one core, all workers): near 100% per worker, they,
        # not the server, are what limits the figures.
        "clientCpuPercent": round(100 * sum(iv.cpu_seconds for iv in steady) / span, 1),
        "server": None,
        "timeline": [{"t": point["t"], "connected": point["connected"]} for point in series],
    }
    if samples:
        peak = max(s["hwm"] for s in samples)
        server_report: dict[str, Any] = {
            "cpuPercent": round(100 * cpu_seconds / cpu_span, 1) if cpu_seconds and cpu_span else None,
            "cpuMicrosecondsPerMessage": round(cpu_seconds / messages * 1e6, 2) if cpu_seconds and messages else None,
            "peakRssMB": round(peak / 2**20, 1),
            "rssBeforeMB": round(baseline[1] / 2**20, 1) if baseline else None,
            "rssConnectedMB": round(rss_connected / 2**20, 1) if rss_connected else None,
            "memoryPerConnectionKB": (round((rss_connected - baseline[1]) / max(1, o.clients) / 1024, 2)
                                      if rss_connected and baseline else None),
        }
        report["server"] = server_report
    if stats:
        report["serverStats"] = {"batchEfficiency": stats["performance"]["batchEfficiency"],
                                 "latencyMs": stats["performance"]["latencyMs"],
                                 "tickMs": stats["performance"].get("tickMs"),
                                 "totalMessagesDelivered": stats["totalMessagesDelivered"],
                                 "totalEventsEmitted": stats["totalEventsEmitted"],
                                 "activeConnections": stats["activeConnections"]}
    report["series"] = series
    return report


def _series(intervals: list[Interval], start: float, duration: float) -> list[dict[str, Any]]:
    """One point a second of the measured period: at its middle, the sum over workers of the rate
    and connections of the interval each was in (workers' intervals are not aligned, so summing
    whole intervals per second would show 0 or 2 of a worker's), and latency by kind."""
    series = []
    for second in range(int(math.ceil(duration))):
        covering = _covering(intervals, start + second + 0.5)
        batched = [x for iv in covering for x in iv.batched_latency]
        immediate = [x for iv in covering for x in iv.immediate_latency]
        series.append({
            "t": second,
            "connected": sum(iv.connected for iv in covering),
            "messagesPerSecond": round(sum(iv.messages / max(1e-9, iv.ended - iv.at) for iv in covering), 1),
            "batchedP50": percentile(batched, 0.5), "batchedP99": percentile(batched, 0.99),
            "immediateP50": percentile(immediate, 0.5), "immediateP99": percentile(immediate, 0.99),
        })
    return series
