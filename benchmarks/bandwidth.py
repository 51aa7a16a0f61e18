"""Bytes per user per trading day: streaming (1 s batches, with and without permessage-deflate)
against polling ``GET /api/portfolio`` every 30 s, for a portfolio of about 10 positions.

Deterministic and in-process: the simulator drives the sans-I/O core through one whole regular
session (09:30-16:00 New York) at simulated time, with the default rates; every frame the one
connection subscribed to all channels would receive is counted, WebSocket header included.

    python benchmarks/bandwidth.py [--date 2026-11-24] [--positions 10]
"""

from __future__ import annotations

import argparse
import json
import zlib
from dataclasses import replace
from datetime import date

import ujson

from portfolio_ws.core.stream import Outgoing, StreamCore
from portfolio_ws.settings import LimitSettings, RecoverySettings, SimulatorSettings, StreamingSettings
from portfolio_ws import market_calendar as cal
from simulator.engine import Simulation

# A real exchange of `GET /api/portfolio` (request with a session cookie, response headers),
# measured against the server: what polling pays on top of the body each time.
HTTP_OVERHEAD_BYTES = 420


def ws_frame_size(payload: int) -> int:
    return payload + (2 if payload < 126 else 4 if payload < 65536 else 10)


def pick_user(settings: SimulatorSettings, start: float, positions: int) -> str:
    """The first of 50 simulated users whose opening portfolio is closest to ``positions``."""
    users = [f"user-{n}" for n in range(50)]
    sim = Simulation(users, settings, start)
    held: dict[str, set[str]] = {u: set() for u in users}
    for event in sim.initial_events():
        if type(event).__name__ == "PositionUpdate" and event.quantity:
            held[event.user_id].add(event.symbol)
    return min(users, key=lambda u: (abs(len(held[u]) - positions), u))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 11, 24))
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    session = cal.session_on(args.date)
    if session is None:
        raise SystemExit(f"{args.date} is not a trading day")
    settings = replace(SimulatorSettings(), seed=args.seed, users=1)
    user = pick_user(settings, session.open, args.positions)
    sim = Simulation([user], settings, session.open)
    core = StreamCore(StreamingSettings(), LimitSettings(), RecoverySettings(max_age_seconds=10**9), session.open)
    conn = core.open(user, None, session.open)
    core.receive_frame(conn, ujson.dumps({"type": "subscribe", "channels": ["positions", "orders", "account", "trades"]}),
                       session.open)
    for event in sim.initial_events():
        core.receive_event(event, session.open)
    core.data_to_send()  # the connect/subscribe/snapshot exchange is not part of the day's flow

    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)  # permessage-deflate with context takeover
    plain = compressed = messages = events = 0
    polling = polls = 0
    t = session.open
    while t < session.close:
        t += 1.0
        for at, event in sim.advance_to(t):
            core.receive_event(event, at)
            events += 1
        core.flush(t)
        for out in core.data_to_send():
            if isinstance(out, Outgoing):
                data = out.frame.encode()
                messages += 1
                plain += ws_frame_size(len(data))
                packed = deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)
                compressed += ws_frame_size(len(packed) - 4)  # the 00 00 ff ff tail is not sent
        if int(t - session.open) % 30 == 0:
            seq, data = core.portfolio(user)
            body = json.dumps({"type": "snapshot", "timestamp": "2026-11-24T15:00:00.000Z", "userId": user,
                               "seq": seq, "data": data}, separators=(",", ":"))
            polling += len(body.encode()) + HTTP_OVERHEAD_BYTES
            polls += 1
    _, final = core.portfolio(user)
    result = {
        "tradingDay": str(args.date), "sessionSeconds": int(session.close - session.open),
        "positionsAtClose": len(final["positions"]), "events": events, "messages": messages,
        "streamingBytes": plain, "streamingDeflateBytes": compressed,
        "pollingBytes": polling, "polls": polls,
        "batchEfficiency": f"{core.stats.batch_efficiency() * 100:.1f}%",
        "streamingVsPolling": f"{plain / polling * 100:.1f}%",
        "deflateVsPolling": f"{compressed / polling * 100:.1f}%",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
