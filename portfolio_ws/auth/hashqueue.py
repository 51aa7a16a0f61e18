"""The bounded queue for password hashing: at most ``workers`` argon2 checks run at once (each
holds argon2id's 64 MiB and a core while it runs), at most ``max_waiting`` more wait; past that the caller is
told to come back later (503 + ``Retry-After``) instead of piling up threads, memory and latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")


class HashQueueFull(Exception):
    """Every worker busy and the queue full: ``retry_after`` whole seconds is a fair wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"password checks queue full; retry after {retry_after}s")
        self.retry_after = retry_after


class HashQueue:
    def __init__(self, workers: int, max_waiting: int) -> None:
        self.workers = workers
        self.max_waiting = max_waiting
        self.in_flight = 0  # running or waiting
        self.refused = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password-hash")
        self._mean_seconds = 0.1  # a running mean of one check's duration, for Retry-After

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` on a hashing thread; raises ``HashQueueFull`` when the queue is full."""
        if self.in_flight >= self.workers + self.max_waiting:
            self.refused += 1
            rounds = self.in_flight / self.workers
            raise HashQueueFull(max(1, math.ceil(rounds * self._mean_seconds)))
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._timed, work, *args)
        finally:
            self.in_flight -= 1

    def _timed(self, work: Callable[..., T], *args: object) -> T:
        started = time.perf_counter()
        try:
            return work(*args)
        finally:  # a float written from several threads: a lost update only blurs an estimate
            self._mean_seconds += 0.2 * (time.perf_counter() - started - self._mean_seconds)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
