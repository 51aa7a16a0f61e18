"""The bounded queue of password checks (portfolio_ws/auth/hashqueue.py): never more than its
workers plus its queue at once; past that, refused with a Retry-After, on the real thread pool."""

from __future__ import annotations

import asyncio
import threading

import pytest

from portfolio_ws.auth.hashqueue import HashQueue, HashQueueFull


async def test_a_full_queue_refuses_at_once_and_frees_its_places_when_work_ends():
    queue = HashQueue(workers=2, max_waiting=3)
    release = threading.Event()
    running: list[int] = []

    def check(n: int) -> int:
        running.append(n)
        release.wait(10)
        return n

    admitted = [asyncio.ensure_future(queue.run(check, n)) for n in range(5)]
    await asyncio.sleep(0)
    assert queue.in_flight == 5
    for _ in range(20):
        with pytest.raises(HashQueueFull) as refused:
            await queue.run(check, 99)
        assert refused.value.retry_after >= 1
    assert queue.refused == 20
    release.set()
    assert await asyncio.gather(*admitted) == [0, 1, 2, 3, 4]
    assert queue.in_flight == 0 and 99 not in running
    assert await queue.run(check, 7) == 7
    queue.close()


async def test_no_more_than_the_workers_run_at_once():
    queue = HashQueue(workers=2, max_waiting=50)
    lock = threading.Lock()
    at_once = peak = 0

    def check() -> None:
        nonlocal at_once, peak
        with lock:
            at_once += 1
            peak = max(peak, at_once)
        threading.Event().wait(0.005)
        with lock:
            at_once -= 1

    await asyncio.gather(*(queue.run(check) for _ in range(40)))
    assert peak == 2
    queue.close()
