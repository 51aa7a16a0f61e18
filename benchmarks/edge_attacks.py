"""Attacks on the HTTP/accept layer of a ``portfolio-ws serve`` process, and what they measure
(docs/reliability.md, "The HTTP edge"). The drivers are shared with
tests/process/reliability/test_edge_attacks.py, which runs smaller versions with asserted outcomes.

- ``idle``: 2,000 connections, half sending nothing, half half a request head; when does the server
  close each, and how long does a real user's login take meanwhile;
- ``filelimit``: a server with a low file limit (RLIMIT_NOFILE) held at it by an attacker who keeps
  reopening connections; the server's CPU and log lines over the hold, and how soon a login answers
  after the attacker leaves;
- ``bodies``: 4 concurrent 100 MiB request bodies; the answer and the server's RSS growth;
- ``storm``: N clients opening WebSockets at R a second (a reconnect storm after a restart); how many
  are admitted (101 and the CONNECTED message), refused or timed out (benchmarks/reconnect_storm.py).

    python benchmarks/edge_attacks.py                    # all four, ~3 minutes
    python benchmarks/edge_attacks.py storm --clients 19000 --rate 2000 --out storm.json

Loopback only, bounded in connections and time; every part stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.rawhttp import closed_by_server  # noqa: E402  (what the server sends until it closes)

PASSWORD = "attack-test-password"
LOGIN_BODY = b'{"username": "%s", "password": "%s"}'
PAUSE_WORDS = ("accepting paused", "still at the file limit", "accepting again")


# --- small raw clients -----------------------------------------------------------------------------
# The real user's address: not the attacker's (127.0.0.1), as on a real network.
USER_ADDRESS = ("127.0.0.2", 0)


async def login_seconds(port: int, username: str, password: str = PASSWORD, timeout: float = 10.0) -> float:
    """Seconds a login takes (a fresh connection, the whole answer); raises unless it is 200."""
    started = time.monotonic()
    body = LOGIN_BODY % (username.encode(), password.encode())
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=USER_ADDRESS),
                                            timeout)
    try:
        writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (port, len(body), body))
        answer = await closed_by_server(reader, max(0.1, timeout - (time.monotonic() - started)))
    finally:
        writer.close()
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"login answered {answer[:200]!r}")
    return time.monotonic() - started


async def health_seconds(port: int, timeout: float = 5.0) -> float:
    """Seconds a GET /api/health takes on a fresh connection (the HTTP path without argon2)."""
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=USER_ADDRESS),
                                            timeout)
    try:
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = await closed_by_server(reader, timeout)
    finally:
        writer.close()
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"health answered {answer[:200]!r}")
    return time.monotonic() - started


async def logins_meanwhile(port: int, username: str, stop: asyncio.Event, every: float = 0.5,
                           failures: list[str] | None = None, password: str = PASSWORD,
                           health: list[float] | None = None) -> list[float]:
    """A real user logging in every ``every`` s until ``stop``: each login's seconds (inf: failed,
    and why in ``failures``); each preceded by a GET /api/health timed into ``health``."""
    times: list[float] = []
    while not stop.is_set():
        try:
            if health is not None:
                health.append(await health_seconds(port))
            times.append(await login_seconds(port, username, password, timeout=5.0))
        except (OSError, RuntimeError, asyncio.TimeoutError) as exc:
            times.append(float("inf"))
            if failures is not None:
                failures.append(repr(exc)[:300])
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass
    return times


# --- idle and half-sent connections ---------------------------------------------------------------
async def idle_attack(port: int, username: str, connections: int = 2000, within: float = 40.0,
                      password: str = PASSWORD) -> dict[str, Any]:
    """``connections`` held open, half silent and half with half a head; seconds until the server
    closed each (inf: not within ``within``), and the logins of a real user meanwhile (with the
    same user's logins just before, for what the password hash alone costs at the moment)."""
    quiet = [await login_seconds(port, username, password) for _ in range(3)]
    opened: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
    for i in range(connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if i % 2:
            writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: abc")
        opened.append((time.monotonic(), reader, writer))
    stop = asyncio.Event()
    failures: list[str] = []
    health: list[float] = []
    user = asyncio.ensure_future(logins_meanwhile(port, username, stop, failures=failures, password=password,
                                                  health=health))

    async def closed_after(start: float, reader: asyncio.StreamReader) -> float:
        try:
            await closed_by_server(reader, within - (time.monotonic() - start))
        except asyncio.TimeoutError:
            return float("inf")
        except ConnectionError:
            pass  # reset by the server (a refusal while the client had unread bytes): closed as well
        return time.monotonic() - start

    closed = await asyncio.gather(*(closed_after(start, reader) for start, reader, _ in opened))
    stop.set()
    logins = await user
    for _, _, writer in opened:
        writer.close()
    held = sorted(closed)
    return {"connections": connections, "closed_by_server": sum(t != float("inf") for t in closed),
            "closed_after_s": {"min": round(held[0], 2), "median": round(statistics.median(held), 2),
                               "max": round(held[-1], 2)},
            "logins": len(logins), "login_s": {"median": round(statistics.median(logins), 3),
                                                "max": round(max(logins), 3)}, "login_failures": failures,
            "login_s_before_attack": {"median": round(statistics.median(quiet), 3), "max": round(max(quiet), 3)},
            "health_s": {"median": round(statistics.median(health), 3), "max": round(max(health), 3)}}


# --- held at the file limit -----------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def file_limit_attack(port: int, pid: int, log: Path, username: str, attackers: int,
                            hold: float, password: str = PASSWORD) -> dict[str, Any]:
    """Keep ``attackers`` connections open (reopening any the server closes) for ``hold`` seconds;
    the server's CPU share and log lines over the hold, then seconds until a login answers 200."""
    writers: set[asyncio.StreamWriter] = set()
    stopping = asyncio.Event()

    async def one() -> None:
        while not stopping.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)  # the backlog is full too: try again shortly, as an attacker would
                continue
            writers.add(writer)
            try:
                await reader.read()  # until the server closes it
            except OSError:
                pass
            writers.discard(writer)
            writer.close()

    lines_before = len(log.read_text(errors="replace").splitlines())
    attack_began = time.monotonic()
    tasks = [asyncio.ensure_future(one()) for _ in range(attackers)]
    await asyncio.sleep(min(2.0, hold / 4))  # let the attack reach the limit before measuring the CPU
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(hold)  # the measured interval: a fixed span, not a wait for an event
    cpu_share = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
    new_lines = log.read_text(errors="replace").splitlines()[lines_before:]
    stopping.set()
    left = time.monotonic()
    for writer in list(writers):
        writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    back = None
    while time.monotonic() - left < 30:
        try:
            await login_seconds(port, username, password, timeout=5.0)
            back = time.monotonic() - left
            break
        except (OSError, RuntimeError, asyncio.TimeoutError):
            pass
    return {"attackers": attackers, "hold_s": hold, "attack_s": round(left - attack_began, 1),
            "server_cpu_percent": round(100 * cpu_share, 1),
            "log_lines": len(new_lines), "log_lines_about_the_limit": sum(any(w in line for w in PAUSE_WORDS)
                                                                           for line in new_lines),
            "tracebacks": sum("Traceback" in line for line in new_lines),
            "login_answers_after_leaving_s": None if back is None else round(back, 2)}


# --- large bodies -----------------------------------------------------------------------------------
async def big_bodies(port: int, pid: int, count: int = 4, size: int = 100 * 1024 * 1024) -> dict[str, Any]:
    """``count`` concurrent logins declaring ``size``-byte bodies and sending them as fast as the
    server takes them; each answer's status, and the server's RSS growth."""
    before = rss_mib(pid)
    peak = before

    async def one() -> str:
        nonlocal peak
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        # The answer is read while the body is sent, as HTTP clients do (curl, browsers).
        answer = asyncio.ensure_future(reader.readuntil(b"\r\n"))
        chunk, sent = b"x" * 65536, 0
        try:
            while sent < size and not answer.done():
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 5)
                await asyncio.sleep(0)  # let an answer that has arrived be read before the next chunk
                sent += len(chunk)
                peak = max(peak, rss_mib(pid))
        except (OSError, asyncio.TimeoutError):
            pass
        try:
            status = (await asyncio.wait_for(answer, 10)).decode(errors="replace").strip()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            status = f"no answer ({type(exc).__name__})"
        writer.close()
        return f"{status} (sent {sent / 2**20:.1f} MiB)"

    answers = await asyncio.gather(*(one() for _ in range(count)))
    peak = max(peak, rss_mib(pid))
    return {"bodies": count, "declared_mib": size / 2**20, "answers": answers,
            "rss_before_mib": round(before, 1), "rss_growth_mib": round(peak - before, 2)}


# --- running it against a server -------------------------------------------------------------------
def main() -> None:
    from benchmarks.reliability_common import Server, free_port, make_users_and_sessions, serve_command

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["idle", "filelimit", "bodies", "storm"])
    parser.add_argument("--clients", type=int, default=19000)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--nofile", type=int, default=512, help="the file limit of the filelimit part's server")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the filelimit part holds the limit")
    parser.add_argument("--one-address", action="store_true",
                        help="every storm client from 127.0.0.1 (default: a user's 5 per loopback address)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        def server(name: str, *extra: str, prefix: list[str] | None = None, users: int = 1) -> tuple[Any, list[Any]]:
            database, port = str(Path(tmp) / f"{name}.sqlite3"), free_port()
            made = make_users_and_sessions(database, users, prefix="u")
            from argon2 import PasswordHasher, profiles

            from portfolio_ws.auth.users import UserStore
            store = UserStore(database, hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
            store.add("real", PASSWORD)
            store.close()
            return Server([*(prefix or []), *serve_command(port, database, "none", *extra)], port,
                          Path(tmp) / f"{name}.log"), made

        def run(name: str, drive: Callable[[Any, list[Any]], Awaitable[dict[str, Any]]], *extra: str,
                prefix: list[str] | None = None, users: int = 1) -> None:
            srv, made = server(name, *extra, prefix=prefix, users=users)
            srv.start()
            try:
                report[name] = asyncio.run(drive(srv, made))
            finally:
                srv.stop()
            print(name, json.dumps(report[name]), flush=True)

        if "idle" in args.parts:
            run("idle", lambda srv, _: idle_attack(srv.port, "real"))
        if "filelimit" in args.parts:
            run("filelimit", lambda srv, _: file_limit_attack(srv.port, srv.pid, srv.log, "real",
                                                              args.nofile + 500, args.hold),
                prefix=["prlimit", f"--nofile={args.nofile}:{args.nofile}", "--"])
        if "bodies" in args.parts:
            run("bodies", lambda srv, _: big_bodies(srv.port, srv.pid))
        if "storm" in args.parts:
            users = (args.clients + 4) // 5
            srv, made = server("storm", users=users)
            srv.env["PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS"] = str(args.clients + 100)
            cookies = [cookie for _, cookie in made for _ in range(5)][:args.clients]
            srv.start()
            from benchmarks.reconnect_storm import storm_processes

            try:
                before = cpu_seconds(srv.pid)
                report["storm"] = storm_processes(srv.port, cookies, args.rate, args.processes,
                                                  None if args.one_address else 5)
                report["storm"]["server_cpu_s"] = round(cpu_seconds(srv.pid) - before, 1)
                report["storm"]["server_log_errors"] = sum(" ERROR " in line or " WARNING " in line
                                                           for line in srv.log.read_text(errors="replace").splitlines())
            finally:
                srv.stop()
            print("storm", json.dumps(report["storm"]), flush=True)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
