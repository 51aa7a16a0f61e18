"""Attacks by a client with (or without) an account, against ``portfolio-ws serve`` at its defaults
(issue 13, login and WebSocket frames): the figures of docs/reliability.md, "Abuse figures".

    python benchmarks/abuse.py [--runs 3] [--out benchmarks/results/abuse.json]

Scenarios, each on a fresh server, ``--runs`` times (the report gives every run and the medians):
- login: 200 wrong passwords at once for one user from 127.0.0.1 (production argon2id parameters),
  then the user's right password from 127.0.0.2; the same through ``serve --workers 2`` (Redis);
- ping flood: one socket writing protocol pings as fast as the server takes them, while five other
  users time JSON ping -> pong round trips;
- large messages: five sockets sending the largest allowed message (4 KiB of numbers) at the
  message rate (100/s; over the byte budget, so they end in 1008), and at 7.5/s (within the
  32 KiB/s byte budget: never closed), while five other users time their round trips.
The attackers run in their own processes, so their loops don't slow the measuring one.
Loopback only; every scenario ends by itself (bounded in time and count).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability_common import (ROOT, Server, free_port, make_users_and_sessions,  # noqa: E402
                                           proc_sample, serve_command, write_report)

PING_FRAME_MASKED = bytes([0x89, 0x80]) + b"\x00\x00\x00\x00"  # FIN+ping, masked, empty (mask key 0)
OBSERVERS = 5


def masked_text(payload: bytes) -> bytes:
    length = len(payload)
    header = bytes([0x81, 0x80 | length]) if length < 126 else bytes([0x81, 0x80 | 126]) + struct.pack("!H", length)
    return header + b"\x00\x00\x00\x00" + payload  # mask key 0: the payload as is


def upgrade(port: int, cookie: str, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/portfolio HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Cookie: session={cookie}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    return sock


def _attacker(port: int, cookie: str, kind: str, seconds: float, out: Any) -> None:
    """A process: flood one socket (``ping``) or send 4 KiB messages at 100/s (``large``) until the
    server closes it or ``seconds`` pass; reports frames sent and when the close frame came."""
    sock = upgrade(port, cookie)
    sock.setblocking(False)
    started = time.monotonic()
    sent = 0
    closed_at: float | None = None
    close_code: int | None = None
    received = b""
    if kind == "ping":
        batch = PING_FRAME_MASKED * 1000
    else:
        numbers = ",".join(str(1_000_000 + n) for n in range(500))
        message = ('{"type":"ping","pad":[' + numbers + ']}').encode()[:4090]
        message = message[:message.rfind(b",")] + b"]}"
        frame = masked_text(message)
    next_send = started
    while time.monotonic() - started < seconds and closed_at is None:
        try:
            if kind == "ping":
                sent += sock.send(batch) // len(PING_FRAME_MASKED)
            elif time.monotonic() >= next_send:
                sock.send(frame)
                sent += 1
                next_send += 0.01 if kind == "large" else 1 / 7.5  # the message rate, or within 32 KiB/s
        except BlockingIOError:
            pass
        except OSError:
            closed_at = time.monotonic() - started
            break
        try:
            chunk = sock.recv(65536)
            if not chunk:
                closed_at = time.monotonic() - started
            received += chunk
            while len(received) >= 2:  # find a close frame among what came back
                length = received[1] & 0x7F
                start = 2 + (2 if length == 126 else 8 if length == 127 else 0)
                if length == 126:
                    length = struct.unpack("!H", received[2:4])[0] if len(received) >= 4 else 1 << 30
                elif length == 127:
                    length = struct.unpack("!Q", received[2:10])[0] if len(received) >= 10 else 1 << 30
                if len(received) < start + length:
                    break
                if received[0] & 0x0F == 0x8:
                    close_code = struct.unpack("!H", received[start:start + 2])[0]
                    closed_at = time.monotonic() - started
                received = received[start + length:]
        except BlockingIOError:
            time.sleep(0.0005 if kind == "large" else 0)
        except OSError:
            closed_at = time.monotonic() - started
    sock.close()
    out.put({"frames_sent": sent, "closed_after_s": None if closed_at is None else round(closed_at, 2),
             "close_code": close_code, "rate_per_s": round(sent / max(0.001, closed_at or seconds))})


async def observe(port: int, cookies: list[str], seconds: float) -> list[float]:
    """Other users' JSON ping -> pong round trips (ms), 20 a second each, for ``seconds``."""
    import websockets

    times: list[float] = []

    async def one(cookie: str) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/portfolio",
                                      additional_headers={"Cookie": f"session={cookie}"}) as ws:
            await ws.recv()  # CONNECTED
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.perf_counter()
                await ws.send('{"type":"ping"}')
                while json.loads(await ws.recv())["type"] != "pong":
                    pass
                times.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one(c) for c in cookies))
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2) if ordered else 0.0


def socket_scenario(kind: str, attackers: int, seconds: float, work: Path) -> dict[str, Any]:
    port = free_port()
    database = str(work / f"{kind}-{port}.sqlite3")
    sessions = make_users_and_sessions(database, attackers + OBSERVERS, prefix=kind)
    server = Server(serve_command(port, database), port, work / f"{kind}-{port}.log")
    server.start()
    try:
        before = server.sample()
        queue: Any = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_attacker, args=(port, sessions[n][1], kind, seconds, queue))
                 for n in range(attackers)]
        for proc in procs:
            proc.start()
        times = asyncio.run(observe(port, [s for _, s in sessions[attackers:]], seconds))
        results = [queue.get(timeout=seconds + 30) for _ in procs]
        for proc in procs:
            proc.join(10)
        after = server.sample()
    finally:
        server.stop()
    return {"attackers": results, "others_pongs": len(times), "others_p50_ms": pct(times, 0.5),
            "others_p99_ms": pct(times, 0.99), "others_max_ms": round(max(times), 2) if times else None,
            "server_cpu_s": round(after["cpu_s"] - before["cpu_s"], 2), "seconds": seconds}


async def _logins(port: int, body: dict[str, str], count: int, source: str) -> list[tuple[int, float]]:
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

    client = AsyncHTTPClient(force_instance=True, max_clients=count)

    async def one() -> tuple[int, float]:
        started = time.perf_counter()
        request = HTTPRequest(f"http://127.0.0.1:{port}/api/auth/login", method="POST", body=json.dumps(body),
                              headers={"Content-Type": "application/json"}, network_interface=source,
                              request_timeout=120)
        try:
            code = (await client.fetch(request)).code
        except HTTPClientError as exc:
            code = exc.code
        return code, time.perf_counter() - started

    try:
        return await asyncio.gather(*(one() for _ in range(count)))
    finally:
        client.close()


def login_scenario(work: Path, workers: int, redis_url: str = "") -> dict[str, Any]:
    from portfolio_ws.auth.users import UserStore

    port = free_port()
    database = str(work / f"login-{port}.sqlite3")
    store = UserStore(database)  # the production argon2id parameters (~64 MiB a check)
    store.add("alice", "the real password of alice")
    store.close()
    # a key prefix of its own: the counts of an earlier run (same user, same address) don't carry over
    env = {"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_url, "PORTFOLIO_WS_CLUSTER_KEY_PREFIX": f"bench{port}:"} \
        if redis_url else {}
    extra = ("--workers", str(workers)) if workers > 1 else ()
    server = Server(serve_command(port, database, "none", *extra), port, work / f"login-{port}.log", env=env)
    server.start()
    try:
        pids = [server.pid] + ([int(p) for p in os.popen(f"pgrep -P {server.pid}").read().split()] if workers > 1 else [])
        before = {pid: proc_sample(pid) for pid in pids}
        started = time.perf_counter()
        attack = asyncio.run(_logins(port, {"username": "alice", "password": "a wrong guess"}, 200, "127.0.0.1"))
        attack_s = time.perf_counter() - started
        [(real_code, real_s)] = asyncio.run(_logins(port, {"username": "alice",
                                                           "password": "the real password of alice"}, 1, "127.0.0.2"))
        after = {pid: proc_sample(pid) for pid in pids}
    finally:
        server.stop()
    codes = [code for code, _ in attack]
    return {"workers": workers, "verified_401": codes.count(401), "refused_429": codes.count(429),
            "other": sorted(set(codes) - {401, 429}), "attack_wall_s": round(attack_s, 2),
            "rss_growth_mib": round(sum(after[p]["rss_mib"] - before[p]["rss_mib"] for p in pids), 1),
            "peak_rss_growth_mib": round(sum(after[p]["peak_rss_mib"] - before[p]["rss_mib"] for p in pids), 1),
            "server_cpu_s": round(sum(after[p]["cpu_s"] - before[p]["cpu_s"] for p in pids), 2),
            "real_user_code": real_code, "real_user_login_s": round(real_s, 2)}


def median_of(runs: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def retried(run: Any) -> dict[str, Any]:
    """A scenario, again once if its server could not start (a free port taken meanwhile by
    another program on this shared machine)."""
    try:
        return run()  # type: ignore[no-any-return]
    except RuntimeError as exc:
        print(f"retrying: {str(exc)[:200]}", file=sys.stderr)
        return run()  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", action="append", default=[], help="run just this scenario (repeatable); "
                        "the others are kept from --out")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, shared with other jobs", "runs": args.runs}
    if args.only and args.out is not None and args.out.exists():
        report = {**json.loads(args.out.read_text()), **report}
    from tests.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis = RedisServer(work / "redis").start()
        try:
            scenarios = {
                "login_1_worker": lambda: login_scenario(work, 1),
                "login_2_workers": lambda: login_scenario(work, 2, redis.url),
                "ping_flood_1_socket": lambda: socket_scenario("ping", 1, 8.0, work),
                "ping_flood_5_sockets": lambda: socket_scenario("ping", 5, 8.0, work),
                "large_messages_5_sockets": lambda: socket_scenario("large", 5, 10.0, work),
                "large_messages_within_budget_5_sockets": lambda: socket_scenario("large-budget", 5, 10.0, work),
            }
            for name, run in scenarios.items():
                if args.only and name not in args.only:
                    continue
                runs = [retried(run) for _ in range(args.runs)]
                keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
                report[name] = {"median": {k: median_of(runs, k) for k in keys}, "runs": runs}
                print(name, json.dumps(report[name]["median"]), file=sys.stderr)
        finally:
            redis.stop()
    write_report(report, args.out)


if __name__ == "__main__":
    main()
