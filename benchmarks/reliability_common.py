"""What the reliability benchmarks share: a server process on a loopback port with users and
sessions made up front, /proc samples of it, and cheap WebSocket clients.

Everything runs on 127.0.0.1, bounded in connections and time, and stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Coroutine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portfolio_ws.loadtest.wsclient import LoadClient  # noqa: E402

ADMIN_TOKEN = "benchmark-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_users_and_sessions(database: str, users: int, prefix: str = "bench") -> list[tuple[str, str]]:
    """``users`` users with one long-lived session each, written straight to the database (cheap
    hashes: no login round trips); returns (user_id, session id) pairs."""
    from argon2 import PasswordHasher, profiles

    from portfolio_ws.auth.sessions import SessionLifetime
    from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
    from portfolio_ws.auth.users import UserStore

    store = UserStore(database, hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    ids = [store.add(f"{prefix}{n}", f"password-{n}-{prefix}").user_id for n in range(users)]
    store.close()

    async def create() -> list[tuple[str, str]]:
        sessions = SQLiteSessionStore(database, SessionLifetime(86400, 86400))
        made = [(uid, await sessions.create(uid, time.time())) for uid in ids]
        await sessions.close()
        return made

    return asyncio.run(create())


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (MiB), peak RSS (MiB), open file descriptors and CPU seconds of a process, from /proc."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return {"rss_mib": round(rss / 1024, 1), "peak_rss_mib": round(hwm / 1024, 1),
            "fds": len(os.listdir(f"/proc/{pid}/fd")), "cpu_s": round(cpu, 2)}


class Server:
    """A server process (``cmd``) on ``port``, its output in ``log``; readiness polled (bounded)."""

    def __init__(self, cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        self.port = port
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "PORTFOLIO_WS_AUTH_ADMIN_TOKEN": ADMIN_TOKEN,
                    **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_within: float = 30.0) -> float:
        """Start and wait until /api/health answers; returns the epoch time it first did."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=1).read()
                return time.time()
            except OSError:
                time.sleep(0.02)  # readiness poll, bounded by the deadline
        raise RuntimeError(f"server not ready within {ready_within} s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def sample(self) -> dict[str, float]:
        return proc_sample(self.pid)

    def stats(self) -> dict[str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/admin/websocket-stats",
                                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        return json.loads(urllib.request.urlopen(request, timeout=10).read())  # type: ignore[no-any-return]

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def run_against(server: Server, drive: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """Start ``server``, run ``drive()`` against it, stop it; the report gets the server's exit code."""
    server.start()
    try:
        report = asyncio.run(drive())
    finally:
        code = server.stop()
    report["server_exit_code"] = code
    return report


def serve_command(port: int, database: str, feed: str = "none", *extra: str) -> list[str]:
    config = Path(database).with_suffix(".yaml")
    config.write_text("{}\n")  # only the built-in defaults and the environment, not ./config.yaml
    return [sys.executable, "-m", "cli", "serve", "--config", str(config), "--port", str(port),
            "--database", database, "--feed", feed, *extra]


async def open_client(port: int, cookie: str, on_message: Callable[[bytes], None],
                      on_open: Callable[[LoadClient], None], on_close: Callable[[LoadClient], None],
                      receive_buffer: int | None = None) -> LoadClient:
    """A LoadClient on 127.0.0.1:port; ``receive_buffer`` shrinks SO_RCVBUF before connecting."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    _, client = await loop.create_connection(
        lambda: LoadClient(f"127.0.0.1:{port}", "/ws/portfolio", cookie, on_message, on_open, on_close), sock=sock)
    return client


def write_report(report: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(report, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
