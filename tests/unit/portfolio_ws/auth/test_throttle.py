"""The login limits (portfolio_ws/auth/throttle.py and throttle_redis.py), one contract run against
both stores: this process's memory, and a real redis-server. Time is passed in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterator

import pytest

from portfolio_ws.auth.throttle import Attempt, Blocked, LoginPolicy, MemoryLoginThrottle
from portfolio_ws.auth.throttle_redis import RedisLoginThrottle
from portfolio_ws.settings import AuthSettings
from tests.redis_server import RedisServer

T = 1_000_000.0
IP, OTHER_IP = "203.0.113.7", "198.51.100.9"
POLICY = LoginPolicy(pair_limit=3, address_limit=5, window=60.0, delay_after=4, delay_seconds=0.5,
                     max_delay_seconds=4.0)


@pytest.fixture(params=["memory", "redis"])
def make_throttle(request: Any, io_loop: Any, tmp_path: Path) -> Iterator[Any]:
    made: list[Any] = []
    server = RedisServer(tmp_path / "redis").start() if request.param == "redis" else None

    def factory(policy: LoginPolicy = POLICY) -> Any:
        throttle = MemoryLoginThrottle(policy) if server is None else RedisLoginThrottle(server.url, policy)
        made.append(throttle)
        return throttle

    yield factory
    for throttle in made:
        io_loop.run_sync(throttle.close, timeout=10)
    if server is not None:
        server.stop()


def test_the_defaults_are_10_per_user_and_address_50_per_address_in_5_minutes():
    policy = LoginPolicy.from_settings(AuthSettings())
    assert (policy.pair_limit, policy.address_limit, policy.window) == (10, 50, 300.0)
    assert [policy.delay(n) for n in (0, 9, 10, 11, 12, 13, 14, 40)] == [0, 0, 0.5, 1, 2, 4, 8, 8]


async def test_attempts_count_as_they_start_so_concurrent_ones_cannot_slip_under(make_throttle):
    throttle = make_throttle()
    verdicts = await asyncio.gather(*(throttle.begin("alice", IP, T) for _ in range(50)))
    assert sum(isinstance(v, Attempt) for v in verdicts) == 3  # none has finished: all counted anyway
    assert {v for v in verdicts if isinstance(v, Blocked)} == {Blocked("user+address", 60)}


async def test_a_blocked_pair_leaves_the_user_free_from_another_address_with_growing_delays(make_throttle):
    throttle = make_throttle()
    for n in range(3):
        await throttle.begin("alice", IP, T + n)
    assert await throttle.begin("ALICE", IP, T + 3) == Blocked("user+address", 57)  # usernames ignore case
    other = [await throttle.begin("alice", f"198.51.100.{n}", T + 4) for n in range(4)]
    assert [a.delay for a in other] == [0, 0.5, 1.0, 2.0]  # the username alone: slowed, never refused
    assert (await throttle.begin("bob", IP, T + 4)).delay == 0  # the address isn't blocked for others


async def test_the_address_limit_counts_every_username(make_throttle):
    throttle = make_throttle()
    for n in range(5):
        assert isinstance(await throttle.begin(f"guess{n}", IP, T + n), Attempt)
    assert await throttle.begin("carol", IP, T + 10) == Blocked("address", 50)
    assert isinstance(await throttle.begin("carol", OTHER_IP, T + 10), Attempt)
    assert isinstance(await throttle.begin("carol", IP, T + 60), Attempt)  # the oldest left the window


async def test_refused_attempts_do_not_count_so_waiting_always_gets_back_in(make_throttle):
    throttle = make_throttle()
    for _ in range(3):
        await throttle.begin("alice", IP, T)
    for n in range(200):
        assert isinstance(await throttle.begin("alice", IP, T + n * 0.25), Blocked)
    assert isinstance(await throttle.begin("alice", IP, T + 60), Attempt)


async def test_a_refunded_attempt_is_not_counted(make_throttle):
    throttle = make_throttle()
    for _ in range(10):
        attempt = await throttle.begin("alice", IP, T)
        assert isinstance(attempt, Attempt) and attempt.delay == 0
        await throttle.refund(attempt)


async def test_success_clears_the_users_delays_and_its_own_pair_but_not_an_attackers(make_throttle):
    throttle = make_throttle()
    for n in range(3):
        await throttle.begin("alice", IP, T + n)  # the attacker's address: now blocked for alice
    real = await throttle.begin("alice", OTHER_IP, T + 3)
    await throttle.begin("alice", OTHER_IP, T + 3)
    assert isinstance(real, Attempt)
    await throttle.succeeded(real)
    assert isinstance(await throttle.begin("alice", IP, T + 4), Blocked)
    again = await throttle.begin("alice", OTHER_IP, T + 4)
    assert isinstance(again, Attempt) and again.delay == 0  # the username's count was cleared


async def test_a_success_is_not_counted_against_its_address(make_throttle):
    throttle = make_throttle()
    for n in range(20):
        attempt = await throttle.begin(f"user{n}", IP, T + n)
        assert isinstance(attempt, Attempt), n
        await throttle.succeeded(attempt)


async def test_the_username_count_stays_bounded_under_a_spray_of_addresses(make_throttle):
    throttle = make_throttle()
    for n in range(300):
        attempt = await throttle.begin("alice", f"10.0.{n // 256}.{n % 256}", T + n * 0.01)
        assert isinstance(attempt, Attempt) and attempt.delay <= POLICY.max_delay_seconds


def test_memory_stays_bounded_under_a_spray_of_usernames_and_addresses():
    throttle = MemoryLoginThrottle(LoginPolicy(), max_keys=1000)
    for n in range(20_000):
        throttle.begin_now(f"guess{n}", f"10.0.{n // 256 % 256}.{n % 256}", T + n * 0.001)
    assert all(len(w.attempts) <= 1000 for w in (throttle.pairs, throttle.addresses, throttle.users))
    many = MemoryLoginThrottle(LoginPolicy())
    for n in range(5000):  # one key never holds more than its limit's timestamps
        many.begin_now(f"u{n}", IP, T + n * 0.001)
    assert len(many.addresses.attempts[IP]) == 50
