"""When the server pays for full garbage collections: on a schedule, not whenever CPython decides.

A full (generation 2) collection visits every container object in the process, holding the GIL:
the IOLoop stops for as long as it takes. With 19,000 sockets that is ~1.4 million objects (most of
them Tornado's, per socket) and ~0.9 s, and CPython started one every 20-40 s under load, because
each socket's read future, coroutine frames and selector key, replaced at every frame the peer
sends (a pong every heartbeat), live long enough to be promoted and count toward its trigger
(docs/performance.md, "Garbage collection").

``FullCollections`` turns CPython's automatic full collections off (its young generations keep
running as usual: they are cheap) and runs one every ``server.gc_full_collect_seconds`` from the
IOLoop, logging how long it took. What that trades: cyclic garbage that survived the young
collections (a closed socket's objects, mostly) is freed at the next full collection rather than
within tens of seconds. 0 keeps CPython's own policy.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from tornado.ioloop import PeriodicCallback

log = logging.getLogger("portfolio_ws.gc")

# A generation-2 threshold CPython never reaches: ~10^9 generation-1 collections.
AUTOMATIC_OFF = 1_000_000_000


class FullCollections:
    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self.count = 0
        self.last_pause_seconds: float | None = None
        self.collected = asyncio.Event()  # set after each scheduled collection (tests await it)
        self._saved: tuple[int, int, int] | None = None
        self._timer: PeriodicCallback | None = None

    def start(self) -> None:
        """Call on the running IOLoop. Does nothing when the interval is 0 (CPython's policy)."""
        if self.interval_seconds <= 0 or self._timer is not None:
            return
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.set_threshold(young, middle, AUTOMATIC_OFF)
        self._timer = PeriodicCallback(self.collect, self.interval_seconds * 1000)
        self._timer.start()

    def stop(self) -> None:
        """Give CPython its own policy back (the process may go on: tests, embedding)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def collect(self) -> None:
        started = time.perf_counter()
        freed = gc.collect()
        self.last_pause_seconds = time.perf_counter() - started
        self.count += 1
        log.info("full garbage collection: %.0f ms, %d objects freed", self.last_pause_seconds * 1000, freed)
        self.collected.set()
