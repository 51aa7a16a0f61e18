"""A reconnect storm: N clients opening WebSockets at R a second, as after a restart; admitted =
the 101 and the CONNECTED message within the timeout. Run through ``benchmarks/edge_attacks.py
storm`` (figures in docs/reliability.md); tests/reliability/test_edge_attacks.py runs a small one."""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from typing import Any

UPGRADE = ("GET /ws/portfolio HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: session={cookie}\r\n\r\n")


def source_address(i: int, per_address: int) -> str:
    """Client ``i``'s loopback source address when ``per_address`` clients share one: 127.1.x.y."""
    n = i // per_address
    return f"127.{1 + n // 62500}.{1 + (n // 250) % 250}.{1 + n % 250}"


async def storm(port: int, cookies: list[str], rate: float, hold: float = 5.0,
                timeout: float = 30.0, per_address: int | None = None, first: int = 0) -> dict[str, Any]:
    """Each cookie opens a WebSocket at its moment (``rate`` a second); admitted = 101 and the
    CONNECTED message. All are held ``hold`` s after the last attempt, then closed.
    ``per_address``: clients per loopback source address (127.1.x.y; a user's tabs share one, as
    real users each have their own), ``first`` the index of the first cookie in that numbering;
    None: all from 127.0.0.1."""
    outcomes: dict[str, int] = {}
    connect_s: list[float] = []
    open_writers: list[asyncio.StreamWriter] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5

    async def one(i: int, cookie: str) -> None:
        await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
        started = time.monotonic()
        try:
            local = None if per_address is None else (source_address(first + i, per_address), 0)
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=local),
                                                    timeout)
        except asyncio.TimeoutError:
            outcomes["connect timeout"] = outcomes.get("connect timeout", 0) + 1
            return
        except OSError as exc:
            outcomes[f"connect {type(exc).__name__}"] = outcomes.get(f"connect {type(exc).__name__}", 0) + 1
            return
        open_writers.append(writer)
        writer.write(UPGRADE.format(port=port, cookie=cookie).encode())
        data = b""
        try:
            while b'"CONNECTED"' not in data:
                chunk = await asyncio.wait_for(reader.read(4096), max(0.01, timeout - (time.monotonic() - started)))
                if not chunk:
                    break
                data += chunk
        except (OSError, asyncio.TimeoutError):
            pass
        if data.startswith(b"HTTP/1.1 101") and b'"CONNECTED"' in data:
            outcome = "admitted"
            connect_s.append(time.monotonic() - started)
        elif not data:
            outcome = "closed or timed out before an answer"
        else:
            outcome = data.split(b"\r\n", 1)[0].decode(errors="replace")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(one(i, cookie) for i, cookie in enumerate(cookies)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(hold)  # held open a moment, as real clients would be
    for writer in open_writers:
        writer.close()
    connect_s.sort()
    return {"clients": len(cookies), "rate": rate, "elapsed_s": round(elapsed, 2), "outcomes": outcomes,
            "connect_s": {} if not connect_s else {
                "median": round(statistics.median(connect_s), 3),
                "p99": round(connect_s[int(0.99 * (len(connect_s) - 1))], 3), "max": round(connect_s[-1], 3)}}


def _storm_worker(port: int, cookies: list[str], rate: float, out: Any, per_address: int | None,
                  first: int) -> None:
    try:  # the clients on uvloop when it is there ('portfolio-ws[fast]'): less of the machine for them
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    out.put(asyncio.run(storm(port, cookies, rate, per_address=per_address, first=first)))


def storm_processes(port: int, cookies: list[str], rate: float, processes: int,
                    per_address: int | None = 5) -> dict[str, Any]:
    """The storm from ``processes`` client processes (the client side needs CPU too), merged; each
    process has a contiguous share of the cookies (a user's 5 stay on one source address)."""
    out: Any = multiprocessing.get_context("fork").Queue()
    size = -(-len(cookies) // processes)
    shares = [(i * size, cookies[i * size:(i + 1) * size]) for i in range(processes)]
    procs = [multiprocessing.get_context("fork").Process(
        target=_storm_worker, args=(port, share, rate / processes, out, per_address, first))
        for first, share in shares]
    for proc in procs:
        proc.start()
    parts = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(30)
    outcomes: dict[str, int] = {}
    for part in parts:
        for key, value in part["outcomes"].items():
            outcomes[key] = outcomes.get(key, 0) + value
    return {"clients": len(cookies), "rate": rate, "processes": processes, "outcomes": outcomes,
            "clients_per_source_address": per_address,
            "elapsed_s": max(p["elapsed_s"] for p in parts),
            "connect_s_p99_per_process": [p["connect_s"].get("p99") for p in parts],
            "connect_s_max": max(p["connect_s"].get("max", 0) for p in parts)}


