"""Per-connection limits on what a client sends (sans-I/O: every call takes ``now``).

Rules kept here:
- ``RateGuard``: every frame the client sends costs one message token (data messages, protocol
  pings, pongs, fragments of a longer message alike) and its bytes cost byte tokens (a message's
  once, when it is complete). Both are token buckets; a frame either can't pay for is not processed.
  A client that stays over the limit (no second without a refused frame) for ``close_after``
  seconds is closed;
- ``ReadPacer``: the socket is read no faster than twice those rates (with twice the bursts). Past
  that, reading waits, so TCP pushes back on the sender: what a flood costs the server is bounded by
  the pace, not by how fast the attacker can write. Twice, so frames over the limit are still seen
  (and refused, counted, and end in the close) rather than merely delayed.
"""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    ALLOW = "allow"
    REJECT = "reject"          # drop the frame silently
    REJECT_NOTIFY = "notify"   # drop it and tell the client RATE_LIMITED (at most once a second)
    CLOSE = "close"            # close 1008 Rate limit exceeded


class RateGuard:
    __slots__ = ("rate", "burst", "byte_rate", "byte_burst", "close_after", "_tokens", "_bytes", "_at",
                 "_over_since", "_last_reject", "_last_notice")

    def __init__(self, rate: float, burst: int, close_after: float, now: float,
                 byte_rate: float = float("inf"), byte_burst: float = float("inf")) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.byte_rate = byte_rate
        self.byte_burst = float(byte_burst)
        self.close_after = close_after
        self._tokens = self.burst
        self._bytes = self.byte_burst
        self._at = now
        self._over_since: float | None = None
        self._last_reject = float("-inf")
        self._last_notice = float("-inf")

    def check(self, now: float, nbytes: int = 0) -> Verdict:
        """One frame of ``nbytes`` (payload) arrives: may it be processed?"""
        elapsed = max(0.0, now - self._at)
        self._at = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._bytes = min(self.byte_burst, self._bytes + elapsed * self.byte_rate)
        if self._tokens >= 1.0 and self._bytes >= nbytes:
            self._tokens -= 1.0
            self._bytes -= nbytes
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


class ReadPacer:
    """How long to wait before reading the next frame: frames and wire bytes read so far, against
    ``rate``/``burst`` and ``byte_rate``/``byte_burst``. Balances may go negative (a frame is only
    measured once read); the wait is until both are back to zero."""

    __slots__ = ("rate", "burst", "byte_rate", "byte_burst", "_frames", "_bytes", "_at")

    def __init__(self, rate: float, burst: float, byte_rate: float, byte_burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.byte_rate = byte_rate
        self.byte_burst = byte_burst
        self._frames = burst
        self._bytes = byte_burst
        self._at = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._at)
        self._at = now
        self._frames = min(self.burst, self._frames + elapsed * self.rate)
        self._bytes = min(self.byte_burst, self._bytes + elapsed * self.byte_rate)

    def spend(self, nbytes: int, now: float) -> None:
        """A frame of ``nbytes`` on the wire (header included) was read."""
        self._refill(now)
        self._frames -= 1.0
        self._bytes -= nbytes

    def delay(self, now: float) -> float:
        """Seconds to wait before reading another frame; 0 to read now."""
        self._refill(now)
        return max(0.0, -self._frames / self.rate, -self._bytes / self.byte_rate)
