"""``serve --workers N``: N server processes on one port (SO_REUSEPORT, the kernel spreads new
connections over them), sharing events, offsets, recovery and sessions through Redis
(``cluster.redis_url``), each a cluster node of its own (``<node_id>-w<i>``).

Rules:
- The supervisor only starts, watches and stops; it opens no socket and runs no IOLoop.
- Each worker is ``portfolio-ws serve`` itself with the same flags, ``--workers 1 --reuse-port``
  and its node id in the environment: one code path whatever the worker count.
- SIGINT/SIGTERM go to every worker (each flushes and closes its clients 1001); the supervisor
  exits 0 when all of them did, within ``server.drain_seconds`` plus a margin, killing stragglers.
- A worker that dies is started again after a short pause; one that exits with an error of its own
  within ``EARLY_EXIT_SECONDS`` of its start (a bad setting, a busy port), or with 2 at any time (a
  setting refused: its node id found to be another live node's), stops the whole group with its code
  (a worker killed by a signal is a crash, and is restarted whenever it happens).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger("portfolio_ws.workers")

EARLY_EXIT_SECONDS = 5.0
RESTART_PAUSE_SECONDS = 1.0
POLL_SECONDS = 0.1  # how often the supervisor looks at its workers (a loop, not a wait on anything)


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen[bytes]
    started: float


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM it if the supervisor dies (even by SIGKILL), so no
    orphaned worker keeps the port. Linux only; elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_command(argv: list[str]) -> list[str]:
    """The command line of one worker: this ``serve`` with its flags, as one process."""
    return [sys.executable, "-m", "cli", *argv, "--workers", "1", "--reuse-port"]


class Supervisor:
    def __init__(self, count: int, argv: list[str], node_id: str, drain_seconds: float) -> None:
        self.count = count
        self.command = worker_command(argv)
        self.node_id = node_id or f"{socket.gethostname()}-{os.getpid()}"
        self.drain_seconds = drain_seconds
        self.workers: dict[int, Worker] = {}
        self.stopping = False

    def spawn(self, index: int) -> None:
        env = {**os.environ, "PORTFOLIO_WS_CLUSTER_NODE_ID": f"{self.node_id}-w{index}"}
        proc = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.workers[index] = Worker(index, proc, time.monotonic())
        log.info("worker %d started (pid %d)", index, proc.pid)

    def stop(self, signum: int, frame: FrameType | None = None) -> None:
        self.stopping = True
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Run the group until a signal; returns the exit code for the supervisor."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for index in range(self.count):
            self.spawn(index)
        log.info("portfolio-ws: %d workers on one port (node %s)", self.count, self.node_id)
        while not self.stopping:
            for index, worker in list(self.workers.items()):
                code = worker.proc.poll()
                if code is None or self.stopping:
                    continue
                if code == 2 or code > 0 and time.monotonic() - worker.started < EARLY_EXIT_SECONDS:
                    log.error("worker %d exited %d (%s); stopping every worker", index, code,
                              "a setting refused" if code == 2 else "at start")
                    self.stop(signal.SIGTERM)
                    self.wait()
                    return code or 1
                log.warning("worker %d (pid %d) exited %d; starting it again", index, worker.proc.pid, code)
                time.sleep(RESTART_PAUSE_SECONDS)
                self.spawn(index)
            time.sleep(POLL_SECONDS)
        return self.wait()

    def wait(self) -> int:
        """Wait for every worker to exit (bounded); 0 when all exited 0."""
        deadline = time.monotonic() + self.drain_seconds + 5.0
        worst = 0
        for worker in self.workers.values():
            try:
                code = worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not exit in time; killing it", worker.index)
                worker.proc.kill()
                code = worker.proc.wait()
            worst = worst or code
        return worst
