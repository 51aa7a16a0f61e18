"""Graceful shutdown under load (issue 6): a ``portfolio-ws serve`` process holding 5,000 sockets is
sent SIGTERM; every client receives 1001 and the process exits 0 within ``server.drain_seconds``.
The server comes back on the same port and database, and the clients, reconnecting with full jitter
as docs/protocol.md tells them to, are all back, spread over time rather than in one burst.

The run is ``benchmarks/shutdown_reconnect.py`` itself (the figures in docs/reliability.md come from
it), with a shorter backoff cap so the test takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
from pathlib import Path

import pytest

from benchmarks.reliability_common import free_port, make_users_and_sessions
from benchmarks.shutdown_reconnect import drive

pytestmark = pytest.mark.slow  # 5,000 sockets against a real serve process

CONNECTIONS = 5000


def test_sigterm_with_5000_connections_closes_all_1001_and_they_come_back_spread_out(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 5,000 sockets here, 5,000 in the server
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > CONNECTIONS + 500, "raise the open-file limit"
    args = argparse.Namespace(connections=CONNECTIONS, per_user=5, drain=5.0, base=1.0, cap=8.0, seed=7,
                              down=1.0, port=free_port())
    database = str(tmp_path / "shutdown.sqlite3")
    sessions = make_users_and_sessions(database, CONNECTIONS // 5)

    report = asyncio.run(drive(args, tmp_path, database, sessions))

    assert report["server_before_sigterm"]["active_connections"] == CONNECTIONS
    shutdown = report["shutdown"]
    assert shutdown["close_codes"] == {"1001 Server shutting down": CONNECTIONS}
    assert shutdown["exit_code"] == 0
    assert shutdown["process_exit_after_sigterm_s"] <= args.drain

    reconnect = report["reconnect"]
    assert reconnect["reconnected"] == CONNECTIONS
    assert reconnect["server_active_connections_after"] == CONNECTIONS
    assert reconnect["all_back_within_30s_of_restart"]
    # Spread out: no single second takes more than half of the clients back.
    assert reconnect["peak_per_second"] <= CONNECTIONS // 2
    assert len([n for n in reconnect["histogram_from_sigterm"].values() if n]) >= 4
