"""The login limiter (portfolio_ws/auth/throttle.py), sans-I/O: time is passed in."""

from __future__ import annotations

from portfolio_ws.auth.throttle import Blocked, LoginThrottle
from portfolio_ws.settings import AuthSettings

T = 1_000_000.0
IP, OTHER_IP = "203.0.113.7", "198.51.100.9"


def test_defaults_are_10_per_user_and_50_per_address_in_5_minutes():
    throttle = LoginThrottle.from_settings(AuthSettings())
    for n in range(10):
        assert throttle.check("alice", IP, T + n) is None
        throttle.failed("alice", IP, T + n)
    assert throttle.check("alice", IP, T + 10) == Blocked("user", 290)  # the first failure ages out at T+300
    assert throttle.check("bob", IP, T + 10) is None  # other users from the same address are not blocked
    assert throttle.check("alice", IP, T + 299.5) == Blocked("user", 1)
    assert throttle.check("alice", IP, T + 300) is None  # the oldest failure left the window
    for n in range(41):  # alice's 9 still in the window + 41 = 50 from this address
        throttle.failed(f"user{n}", IP, T + 300)
    assert throttle.check("someone-new", IP, T + 300) == Blocked("address", 1)
    assert throttle.check("someone-new", OTHER_IP, T + 300) is None
    assert throttle.check("someone-new", IP, T + 301) is None  # alice's failure of T+1 left: 49


def test_the_retry_after_is_when_the_oldest_counted_failure_leaves_the_window():
    throttle = LoginThrottle(3, 100, 60.0)
    for t in (0.0, 10.0, 20.0):
        throttle.failed("alice", IP, T + t)
    assert throttle.check("alice", IP, T + 20) == Blocked("user", 40)
    assert throttle.check("alice", IP, T + 59.2) == Blocked("user", 1)  # rounded up, never 0
    assert throttle.check("alice", IP, T + 60) is None
    throttle.failed("alice", IP, T + 60)  # 10, 20, 60 are in the window again
    assert throttle.check("alice", IP, T + 61) == Blocked("user", 9)


def test_refused_attempts_do_not_count_so_waiting_always_gets_back_in():
    throttle = LoginThrottle(2, 100, 60.0)
    throttle.failed("alice", IP, T)
    throttle.failed("alice", IP, T)
    for n in range(1000):  # hammering while blocked: the handler only calls check()
        assert throttle.check("alice", IP, T + n * 0.05) is not None
    assert throttle.check("alice", IP, T + 60) is None


def test_success_clears_the_users_failures_but_not_the_addresss():
    throttle = LoginThrottle(3, 4, 60.0)
    for _ in range(2):
        throttle.failed("alice", IP, T)
    throttle.succeeded("alice", T + 1)
    for _ in range(2):
        throttle.failed("alice", IP, T + 2)
    assert throttle.check("alice", IP, T + 3) == Blocked("address", 57)  # 4 from this address
    assert throttle.check("alice", OTHER_IP, T + 3) is None  # the user's own count is 2 of 3


def test_usernames_count_without_regard_to_case():
    throttle = LoginThrottle(2, 100, 60.0)
    throttle.failed("Alice", IP, T)
    throttle.failed("ALICE", OTHER_IP, T)
    assert throttle.check("alice", "192.0.2.1", T) == Blocked("user", 60)


def test_memory_stays_bounded_under_a_spray_of_usernames_and_addresses():
    throttle = LoginThrottle(10, 50, 300.0, max_keys=1000)
    for n in range(20_000):
        throttle.failed(f"guess{n}", f"10.0.{n // 256 % 256}.{n % 256}", T + n * 0.001)
    assert len(throttle.users.failures) <= 1000 and len(throttle.addresses.failures) <= 1000
    many = LoginThrottle(10, 50, 300.0)
    for n in range(5000):  # one key never holds more than its limit's timestamps
        many.failed("alice", IP, T + n * 0.001)
    assert len(many.users.failures["alice"]) == 10 and len(many.addresses.failures[IP]) == 50


def test_expired_keys_are_forgotten_first_when_the_table_is_full():
    throttle = LoginThrottle(2, 100, 60.0, max_keys=2)
    throttle.failed("old", IP, T)
    throttle.failed("target", IP, T + 100)
    throttle.failed("target", IP, T + 100)
    throttle.failed("new", IP, T + 101)  # table full: "old" expired and goes, "target" stays blocked
    assert throttle.check("target", OTHER_IP, T + 101) == Blocked("user", 59)
    assert "old" not in throttle.users.failures
