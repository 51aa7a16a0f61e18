"""The chaos suite's clients and checker (tests/process/reliability/test_chaos.py).

A ``Stream`` is one client as a program would run it: a user's socket on its home node, subscribed
to every channel, reconnected after any close to the next node that answers, resuming from the
highest ``seq`` it applied. It records every message with the moment it arrived, and every close.

``check`` asserts, per stream, what a user would notice:
- no close 1008 (it tells clients never to come back);
- ``seq`` never goes down;
- no trade id twice (a snapshot after a gap repeats the day's trades: it is a flagged gap cover,
  not an event);
- an order's status never goes back (``accepted`` after ``filled``, ``new`` after ``accepted``);
- every trade the cluster recorded for the user (its history in Redis) while the stream was there
  reached it: in a message, or in a snapshot covering a gap, which is counted and flagged;
- events never stopped longer than ``max_gap`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import ujson
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

CHANNELS = ["positions", "orders", "account", "trades"]
DATA = {"position_update", "order_update", "account_update", "trade_executed", "batch", "snapshot"}
RANK = {"pending_new": 0, "new": 1, "accepted": 2, "partially_filled": 3}  # closed statuses: 4
RECONNECT_PAUSE = 0.2  # between attempts; a program would back off more, the bounds here are tight
CONNECT_TIMEOUT = 10.0  # the upgrade, answered: a hundred at once on a loaded 2-core machine take seconds


@dataclass
class Stream:
    name: str
    cookie: str
    urls: list[str]  # ws:// URLs of the nodes; the first is home
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closes: list[tuple[float, int | None, str | None]] = field(default_factory=list)
    connects: int = 0
    last_seq: int | None = None
    _task: asyncio.Task[None] | None = None
    _stop: bool = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        turn = 0
        while not self._stop:
            url = self.urls[turn % len(self.urls)]
            turn += 1
            try:  # Tornado's own timeouts, which close the connection: one cancelled by
                # asyncio.wait_for stayed open, its slot counted against the user, and the user's
                # next sockets were refused 1008 (Maximum connections exceeded)
                conn = await websocket_connect(HTTPRequest(
                    url, headers={"Cookie": f"session={self.cookie}"}, connect_timeout=CONNECT_TIMEOUT,
                    request_timeout=CONNECT_TIMEOUT))
            except (OSError, HTTPClientError, WebSocketClosedError):
                await asyncio.sleep(RECONNECT_PAUSE)  # a node that is down: try the next one
                continue
            self.connects += 1
            subscribe: dict[str, Any] = {"type": "subscribe", "channels": CHANNELS}
            if self.last_seq is not None:
                subscribe["resumeFrom"] = self.last_seq
            try:
                await conn.write_message(ujson.dumps(subscribe))
            except WebSocketClosedError:
                pass
            while True:
                raw = await conn.read_message()
                if raw is None:
                    break
                message = ujson.loads(raw)
                self.messages.append((time.monotonic(), message))
                if message.get("type") in DATA and isinstance(message.get("seq"), int):
                    self.last_seq = max(self.last_seq or 0, message["seq"])
            self.closes.append((time.monotonic(), conn.close_code, conn.close_reason))
            if conn.close_code == 1008:
                return  # what a real client does; check() fails the stream for it
            turn -= 1  # back to the same node first: it may be a restart
            await asyncio.sleep(RECONNECT_PAUSE)

    def data(self, since: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.messages if m.get("type") in DATA and t >= since]


def _trades(message: dict[str, Any]) -> list[dict[str, Any]]:
    data = message.get("data") or {}
    if message["type"] == "trade_executed":
        return [data]
    return list(data.get("trades") or [])


def _orders(message: dict[str, Any]) -> list[dict[str, Any]]:
    data = message.get("data") or {}
    if message["type"] == "order_update":
        return [data]
    return list(data.get("orders") or [])


async def recorded_trades(redis_url: str, user_id: str, prefix: str = "pws:") -> dict[int, str]:
    """seq -> trade id of every trade the cluster recorded for the user (its history stream)."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = await client.xrange(f"{prefix}recovery:{{{user_id}}}")
    finally:
        await client.aclose()
    found: dict[int, str] = {}
    for entry_id, fields in entries:
        if "e" not in fields:  # a sync or a node's put-back ("s"): a whole state, no new trade
            continue
        event = ujson.loads(fields["e"])
        if event.get("event") == "trade_executed":
            found[int(entry_id.split("-", 1)[0])] = event["trade_id"]
    return found


@dataclass
class Report:
    gap_covers: int = 0  # snapshots that covered a gap (flagged, not failures)
    max_gap: float = 0.0
    trades: int = 0


def check(stream: Stream, recorded: dict[int, str] | None, max_gap: float, window: tuple[float, float],
          report: Report) -> None:
    """Fail with what went wrong for ``stream`` (see the module docstring). ``window``: the monotonic
    interval over which events must keep flowing; ``recorded``: the cluster's trades (None: Redis
    lost its history during the run, so only what the stream itself shows is checked)."""
    name = stream.name
    assert not [c for c in stream.closes if c[1] == 1008], f"{name}: closed 1008: {stream.closes}"
    seqs = [m["seq"] for _, m in stream.data()]
    assert seqs, f"{name}: no data at all"
    assert all(a <= b for a, b in zip(seqs, seqs[1:])), f"{name}: seq went down: {seqs}"
    seen: dict[str, int] = {}
    status: dict[str, int] = {}
    covered: set[str] = set()
    first_snapshot = True
    for _, message in stream.data():
        if message["type"] == "snapshot":
            trades = {t["tradeId"] for t in _trades(message)}
            if not first_snapshot:
                report.gap_covers += 1
            covered |= trades
            first_snapshot = False
            for order in _orders(message):
                status[order["orderId"]] = max(status.get(order["orderId"], 0), RANK.get(order["status"], 4))
            continue
        for trade in _trades(message):
            seen[trade["tradeId"]] = seen.get(trade["tradeId"], 0) + 1
        for order in _orders(message):
            rank = RANK.get(order["status"], 4)
            before = status.get(order["orderId"], -1)
            assert rank >= before or (rank == 4 and before == 4), (
                f"{name}: order {order['orderId']} went back to {order['status']}")
            status[order["orderId"]] = max(rank, before)
    twice = sorted(t for t, n in seen.items() if n > 1)
    assert not twice, f"{name}: trade ids twice: {twice}"
    report.trades += len(seen)
    if recorded is not None:
        first = next(m["seq"] for _, m in stream.data() if m["type"] == "snapshot")
        last = seqs[-1]
        due = {t for s, t in recorded.items() if first < s <= last}
        missing = sorted(due - set(seen) - covered)
        assert not missing, f"{name}: recorded trades never delivered: {missing}"
    times = [t for t, _ in stream.data()] + [window[1]]
    inside = [t for t in times if t >= window[0]]
    gaps = [b - a for a, b in zip([window[0], *inside], inside)]
    worst = max(gaps) if gaps else window[1] - window[0]
    report.max_gap = max(report.max_gap, worst)
    assert worst <= max_gap, f"{name}: events stopped for {worst:.1f} s (bound {max_gap} s)"
