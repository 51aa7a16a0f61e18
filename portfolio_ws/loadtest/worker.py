"""One load-generator process: opens its share of the connections, subscribes, parses every
message, and reports counters and latency samples to the parent once a second."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import ujson

from .wsclient import LoadClient

SAMPLES_PER_REPORT = 2000
CONNECT_CONCURRENCY = 100
IMMEDIATE_TYPES = ("order_update", "trade_executed")


@dataclass
class WorkerPlan:
    host: str
    port: int
    cookies: list[str]
    duration: float
    channels: list[str]
    subscribe: bool = True
    seed: int = 0
    compress: bool = False


@dataclass
class Interval:
    """What one worker saw in one reporting interval."""

    worker: int
    at: float             # when the interval began
    connected: int
    ended: float = 0.0    # when it was reported (the next one begins then)
    messages: int = 0
    data_messages: int = 0
    bytes: int = 0        # message payloads (after decompression)
    wire_bytes: int = 0   # what crossed the socket (frames, compressed or not)
    batched_latency: list[float] = field(default_factory=list)
    immediate_latency: list[float] = field(default_factory=list)
    batched_max: float = 0.0
    immediate_max: float = 0.0
    batched_count: int = 0
    immediate_count: int = 0
    closes: dict[str, int] = field(default_factory=dict)
    connect_errors: int = 0
    ready: bool = False
    cpu_seconds: float = 0.0  # this worker's own CPU in the interval: is the load generator keeping up?


class Worker:
    def __init__(self, index: int, plan: WorkerPlan, report: Any, stop: Any = None) -> None:
        self.index = index
        self.stop = stop  # the parent's multiprocessing Event: set when the measured period is over
        self.plan = plan
        self.report = report
        self.rng = random.Random(plan.seed * 1000 + index)
        self.connected = 0
        self.clients: list[LoadClient] = []
        self.ready = False
        self._received_before = 0
        self._cpu_before = time.process_time()
        self._new_interval()
        self._subscribe = ujson.dumps({"type": "subscribe", "channels": plan.channels})

    def _new_interval(self) -> None:
        self.interval = Interval(self.index, time.time(), self.connected)
        self._seen_batched = 0
        self._seen_immediate = 0

    def _sample(self, bucket: list[float], seen: int, value: float) -> None:
        # Reservoir sampling keeps the report small at any message rate.
        if len(bucket) < SAMPLES_PER_REPORT:
            bucket.append(value)
        else:
            slot = self.rng.randrange(seen)
            if slot < SAMPLES_PER_REPORT:
                bucket[slot] = value

    def on_message(self, payload: bytes) -> None:
        now = time.time()
        iv = self.interval
        iv.messages += 1
        iv.bytes += len(payload)
        msg = ujson.loads(payload)
        event_at = msg.get("eventAt")
        if event_at is None:
            return
        iv.data_messages += 1
        data = msg["data"]
        if msg["type"] in IMMEDIATE_TYPES or (msg["type"] == "batch" and ("orders" in data or "trades" in data)):
            # An order or trade flushes its user's window at once: it is the newest event in the
            # message (the positions it carries along waited longer, and are not what's measured).
            latency = now - msg.get("lastEventAt", event_at)
            self._seen_immediate += 1
            iv.immediate_count += 1
            iv.immediate_max = max(iv.immediate_max, latency)
            self._sample(iv.immediate_latency, self._seen_immediate, latency)
        else:
            latency = now - event_at
            self._seen_batched += 1
            iv.batched_count += 1
            iv.batched_max = max(iv.batched_max, latency)
            self._sample(iv.batched_latency, self._seen_batched, latency)

    def on_open(self, client: LoadClient) -> None:
        self.connected += 1
        self.clients.append(client)
        if self.plan.subscribe:
            client.send_text(self._subscribe)

    def on_close(self, client: LoadClient) -> None:
        if client.upgraded:
            self.connected -= 1
        key = f"{client.close_code} {client.close_reason}".strip()
        self.interval.closes[key] = self.interval.closes.get(key, 0) + 1

    async def _connect(self, cookie: str, gate: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        async with gate:
            try:
                await loop.create_connection(
                    lambda: LoadClient(f"{self.plan.host}:{self.plan.port}", "/ws/portfolio", cookie,
                                       self.on_message, self.on_open, self.on_close, self.plan.compress),
                    self.plan.host, self.plan.port)
            except OSError:
                self.interval.connect_errors += 1

    async def run(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        connecting = asyncio.gather(*(self._connect(cookie, gate) for cookie in self.plan.cookies))
        reporter = asyncio.ensure_future(self._report_loop())
        await connecting
        self.ready = True
        # Every worker keeps its connections until the parent says the measured period (which
        # starts once ALL workers are connected) is over; plan.duration only bounds the wait.
        deadline = time.monotonic() + self.plan.duration
        while time.monotonic() < deadline and not (self.stop is not None and self.stop.is_set()):
            await asyncio.sleep(0.05)  # an mp.Event can't be awaited: checked 20 times a second
        reporter.cancel()
        self._flush()
        for client in list(self.clients):
            client.close()

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)  # report once a second
            self._flush()

    def _flush(self) -> None:
        iv = self.interval
        cpu = time.process_time()
        iv.cpu_seconds = cpu - self._cpu_before
        self._cpu_before = cpu
        received = sum(client.bytes_received for client in self.clients)
        iv.wire_bytes = received - self._received_before
        self._received_before = received
        iv.connected = self.connected
        iv.ready = self.ready
        iv.ended = time.time()
        self.report.put(iv)
        self._new_interval()


def worker_main(index: int, plan: WorkerPlan, report: Any, stop: Any = None) -> None:
    """Process entry point (multiprocessing ``spawn``)."""
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    worker = Worker(index, plan, report, stop)
    asyncio.run(worker.run())
    report.put(None)
