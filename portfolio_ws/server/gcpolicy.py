"""When the server pays for full garbage collections: on a schedule, not whenever CPython decides.

A full (generation 2) collection visits every container object in the process, holding the GIL:
the IOLoop stops for as long as it takes, longer the more sockets are open (most of the objects
are Tornado's, per socket). Left to itself CPython starts one often under load, because each
socket's read future, coroutine frames and selector key, replaced at every frame the peer sends (a
pong every heartbeat), live long enough to be promoted and count toward its trigger
(docs/performance.md, "Garbage collection", has the object counts, pauses and intervals measured
by benchmarks/gc_pause.py and the load test).

``FullCollections`` turns CPython's automatic full collections off (its young generations keep
running as usual: they are cheap) and runs one from the IOLoop every ``server.gc_full_collect_seconds``,
or sooner once many sockets have closed since the last one, logging how long it took. Closed
sockets are what leaves cyclic garbage behind (Tornado's per-socket objects refer to each other),
so it is freed after at most a quarter of the open sockets' worth (and at least 1,000) have closed:
the garbage held stays a fraction of the live heap, as with CPython's own rule, while a server
whose sockets stay open pays the pause once an interval. 0 keeps CPython's own policy.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Callable

from tornado.ioloop import PeriodicCallback

log = logging.getLogger("portfolio_ws.gc")

# A generation-2 threshold CPython never reaches: ~10^9 generation-1 collections.
AUTOMATIC_OFF = 1_000_000_000
CHECK_SECONDS = 5.0   # how often the closes are looked at
MIN_CLOSES = 1000     # a collection early after at least this many closes ...
OPEN_SHARE = 0.25     # ... and at least this share of the sockets open


class FullCollections:
    def __init__(self, interval_seconds: float, closed: Callable[[], int] = lambda: 0,
                 open_sockets: Callable[[], int] = lambda: 0, clock: Callable[[], float] = time.monotonic,
                 check_seconds: float = CHECK_SECONDS) -> None:
        """``closed``: sockets closed so far (a running count); ``open_sockets``: open now."""
        self.interval_seconds = interval_seconds
        self.closed = closed
        self.open_sockets = open_sockets
        self.clock = clock
        self.check_seconds = check_seconds
        self._last_at = clock()
        self._closed_at_last = closed()
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
        self._last_at = self.clock()
        self._closed_at_last = self.closed()
        self._timer = PeriodicCallback(self.check, min(self.check_seconds, self.interval_seconds) * 1000)
        self._timer.start()

    def stop(self) -> None:
        """Give CPython its own policy back (the process may go on: tests, embedding)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def check(self) -> None:
        """Collect if the interval is up or enough sockets have closed since the last collection."""
        closes = self.closed() - self._closed_at_last
        if self.clock() - self._last_at >= self.interval_seconds \
                or closes >= max(MIN_CLOSES, OPEN_SHARE * self.open_sockets()):
            self.collect()

    def collect(self) -> None:
        self._last_at = self.clock()
        self._closed_at_last = self.closed()
        started = time.perf_counter()
        freed = gc.collect()
        self.last_pause_seconds = time.perf_counter() - started
        self.count += 1
        log.info("full garbage collection: %.0f ms, %d objects freed", self.last_pause_seconds * 1000, freed)
        self.collected.set()
