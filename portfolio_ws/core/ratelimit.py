"""Per-connection message rate limit: a token bucket, plus the abuse rule that closes a client
that stays over the limit (no second without a rejected message) for ``close_after`` seconds."""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    ALLOW = "allow"
    REJECT = "reject"          # drop the message silently
    REJECT_NOTIFY = "notify"   # drop it and tell the client RATE_LIMITED (at most once a second)
    CLOSE = "close"            # close 1008 Rate limit exceeded


class RateGuard:
    __slots__ = ("rate", "burst", "close_after", "_tokens", "_at", "_over_since", "_last_reject", "_last_notice")

    def __init__(self, rate: float, burst: int, close_after: float, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.close_after = close_after
        self._tokens = self.burst
        self._at = now
        self._over_since: float | None = None
        self._last_reject = float("-inf")
        self._last_notice = float("-inf")

    def check(self, now: float) -> Verdict:
        elapsed = max(0.0, now - self._at)
        self._at = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            if self._over_since is not None and now - self._last_reject >= 1.0:
                self._over_since = None  # a whole second without a rejection ends the streak
            return Verdict.ALLOW
        if self._over_since is None or now - self._last_reject >= 1.0:
            self._over_since = now
        self._last_reject = now
        if now - self._over_since >= self.close_after:
            return Verdict.CLOSE
        if now - self._last_notice >= 1.0:
            self._last_notice = now
            return Verdict.REJECT_NOTIFY
        return Verdict.REJECT
