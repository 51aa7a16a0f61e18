"""Login attempt limits, per username and per client address. Sans-I/O: every call takes ``now``.

Rules kept here:
- only failed logins count; a login refused by the limit itself is not a failure (so waiting is
  always enough to get back in), and a successful login clears that username's failures;
- a key with ``limit`` failures within the last ``window`` seconds is blocked until the oldest of
  them is ``window`` old: ``check`` returns the seconds to wait (the ``Retry-After``);
- while blocked, a login is refused whatever the password, so the limit answers no guesses;
- memory is bounded: a key keeps at most ``limit`` timestamps, and at most ``max_keys`` keys per
  kind are tracked (expired ones go first, then the least recently failed).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from ..settings import AuthSettings

Scope = Literal["user", "address"]


@dataclass(frozen=True, slots=True)
class Blocked:
    """A refused attempt: which limit refused it and how long until it would be let through."""

    scope: Scope
    retry_after: int  # whole seconds, at least 1 (the Retry-After header)


class _Window:
    """Failure times per key within a sliding window, at most ``limit`` per key."""

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.failures: dict[str, deque[float]] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        times = self.failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self.failures[key]
            return 0.0
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window - now

    def add(self, key: str, now: float) -> None:
        times = self.failures.pop(key, None)  # re-inserted last: the dict is in order of last failure
        if times is None:
            times = deque(maxlen=self.limit)
            if len(self.failures) >= self.max_keys:
                self._evict(now)
        times.append(now)
        self.failures[key] = times

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)

    def _evict(self, now: float) -> None:
        # The dict is in order of last failure, so the expired keys are at its front.
        while self.failures:
            oldest = next(iter(self.failures))
            if self.failures[oldest][-1] > now - self.window and len(self.failures) < self.max_keys:
                break
            del self.failures[oldest]  # expired, or still full: forget the least recently failed


class LoginThrottle:
    def __init__(self, per_user: int, per_address: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self.users = _Window(per_user, window_seconds, max_keys)
        self.addresses = _Window(per_address, window_seconds, max_keys)

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> "LoginThrottle":
        return cls(auth.login_failures_per_user, auth.login_failures_per_address, auth.login_window_seconds)

    @staticmethod
    def user_key(username: str) -> str:
        return username.lower()  # usernames are unique without regard to case

    def check(self, username: str, address: str, now: float) -> Blocked | None:
        """None when this attempt may go ahead; else why not and for how long."""
        for scope, window, key in (("address", self.addresses, address),
                                   ("user", self.users, self.user_key(username))):
            wait = window.wait(key, now)
            if wait > 0:
                return Blocked(scope, max(1, math.ceil(wait)))  # type: ignore[arg-type]
        return None

    def failed(self, username: str, address: str, now: float) -> None:
        self.users.add(self.user_key(username), now)
        self.addresses.add(address, now)

    def succeeded(self, username: str, now: float) -> None:
        self.users.clear(self.user_key(username))
