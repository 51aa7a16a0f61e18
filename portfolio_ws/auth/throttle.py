"""Login attempt limits: the policy (sans-I/O, every call takes ``now``) and its in-memory store.
``throttle_redis`` keeps the same counts in Redis so every worker and node shares them.

Rules kept here (docs/reliability.md, "Login limits", says why):
- an attempt counts when it STARTS, before its password is checked, so logins sent together can't
  all slip under the limit; one that never reaches the check (hash queue full) is refunded;
- hard limits, per window: ``pair_limit`` attempts for one username from one address, and
  ``address_limit`` from one address whatever the username. While blocked, a login is refused
  (429 + ``Retry-After``) before any password check, so the limit answers no guesses, and a refused
  attempt doesn't count, so waiting always gets back in;
- the username alone (every address together) is never blocked: past ``delay_after`` attempts in the
  window, each further attempt waits first, doubling from ``delay_seconds`` up to
  ``max_delay_seconds``. An attacker can slow a user's login, never stop it (OWASP: delays rather
  than lockouts); the right password from another address still logs in;
- a success clears the username's delay count and its own address's count for that username (an
  attacker's count from another address stays), and is not counted against its address;
- memory is bounded: a key keeps at most its limit's timestamps, at most ``max_keys`` keys per kind
  (expired ones go first, then the least recently tried).
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..settings import AuthSettings

Scope = Literal["user+address", "address"]

# The per-username count only sets the delay, which stops growing after a few doublings.
_USER_COUNT_CAP = 64


@dataclass(frozen=True, slots=True)
class Blocked:
    """A refused attempt: which limit refused it and how long until it would be let through."""

    scope: Scope
    retry_after: int  # whole seconds, at least 1 (the Retry-After header)


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt let through: counted already; wait ``delay`` seconds, then check the password."""

    user_key: str
    address: str
    at: float
    delay: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    pair_limit: int = 10
    address_limit: int = 50
    window: float = 300.0
    delay_after: int = 10
    delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> "LoginPolicy":
        return cls(auth.login_failures_per_user_address, auth.login_failures_per_address,
                   auth.login_window_seconds, auth.login_user_delay_after, auth.login_user_delay_seconds,
                   auth.login_user_max_delay_seconds)

    def delay(self, user_attempts: int) -> float:
        """The wait before checking a password, given the username's attempts already in the window."""
        if user_attempts < self.delay_after:
            return 0.0
        doublings = min(user_attempts - self.delay_after, 30)
        return min(self.max_delay_seconds, self.delay_seconds * 2 ** doublings)

    def retry_after(self, oldest: float, now: float) -> int:
        return max(1, math.ceil(oldest + self.window - now))


def user_key(username: str) -> str:
    return username.lower()  # usernames are unique without regard to case


class LoginThrottle(Protocol):
    """Where the counts live: this process (``MemoryLoginThrottle``) or Redis (``RedisLoginThrottle``)."""

    policy: LoginPolicy

    async def begin(self, username: str, address: str, now: float) -> Attempt | Blocked:
        """Count an attempt that is starting, or refuse it (not counted)."""

    async def refund(self, attempt: Attempt) -> None:
        """The attempt never checked a password (the hash queue was full): uncount it."""

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: clear the username's counts and uncount it for its address."""

    async def close(self) -> None: ...


class _Window:
    """Attempt times per key within a sliding window, at most ``limit`` per key."""

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.attempts: dict[str, deque[float]] = {}

    def count(self, key: str, now: float) -> int:
        times = self.attempts.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self.attempts[key]
            return 0
        return len(times)

    def oldest_if_full(self, key: str, now: float) -> float | None:
        """The oldest attempt's time when ``key`` is at its limit, else None."""
        if self.count(key, now) < self.limit:
            return None
        return self.attempts[key][0]

    def add(self, key: str, now: float) -> None:
        times = self.attempts.pop(key, None)  # re-inserted last: the dict is in order of last attempt
        if times is None:
            times = deque(maxlen=self.limit)
            if len(self.attempts) >= self.max_keys:
                self._evict(now)
        times.append(now)
        self.attempts[key] = times

    def remove(self, key: str, at: float) -> None:
        times = self.attempts.get(key)
        if times is not None and at in times:
            times.remove(at)
            if not times:
                del self.attempts[key]

    def clear(self, key: str) -> None:
        self.attempts.pop(key, None)

    def _evict(self, now: float) -> None:
        # The dict is in order of last attempt, so the expired keys are at its front.
        while self.attempts:
            oldest = next(iter(self.attempts))
            if self.attempts[oldest][-1] > now - self.window and len(self.attempts) < self.max_keys:
                break
            del self.attempts[oldest]  # expired, or still full: forget the least recently tried


class MemoryLoginThrottle:
    """The policy's counts in this process: right for one process, not for ``--workers`` or a cluster."""

    def __init__(self, policy: LoginPolicy, max_keys: int = 100_000) -> None:
        self.policy = policy
        self.pairs = _Window(policy.pair_limit, policy.window, max_keys)
        self.addresses = _Window(policy.address_limit, policy.window, max_keys)
        self.users = _Window(_USER_COUNT_CAP, policy.window, max_keys)

    @staticmethod
    def _pair(user: str, address: str) -> str:
        return f"{user}\x00{address}"

    def begin_now(self, username: str, address: str, now: float) -> Attempt | Blocked:
        user = user_key(username)
        pair = self._pair(user, address)
        for scope, window, key in (("user+address", self.pairs, pair), ("address", self.addresses, address)):
            oldest = window.oldest_if_full(key, now)
            if oldest is not None:
                return Blocked(scope, self.policy.retry_after(oldest, now))  # type: ignore[arg-type]
        delay = self.policy.delay(self.users.count(user, now))
        for window, key in ((self.pairs, pair), (self.addresses, address), (self.users, user)):
            window.add(key, now)
        return Attempt(user, address, now, delay)

    def refund_now(self, attempt: Attempt) -> None:
        self.pairs.remove(self._pair(attempt.user_key, attempt.address), attempt.at)
        self.addresses.remove(attempt.address, attempt.at)
        self.users.remove(attempt.user_key, attempt.at)

    def succeeded_now(self, attempt: Attempt) -> None:
        self.users.clear(attempt.user_key)
        self.pairs.clear(self._pair(attempt.user_key, attempt.address))
        self.addresses.remove(attempt.address, attempt.at)

    async def begin(self, username: str, address: str, now: float) -> Attempt | Blocked:
        return self.begin_now(username, address, now)

    async def refund(self, attempt: Attempt) -> None:
        self.refund_now(attempt)

    async def succeeded(self, attempt: Attempt) -> None:
        self.succeeded_now(attempt)

    async def close(self) -> None:
        pass
