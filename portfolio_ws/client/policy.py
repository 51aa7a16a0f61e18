"""When to reconnect, how long to wait, and how fresh the data is (sans-I/O, no clock, no randomness
of its own: both are passed in).

Rule 1: the close-code table of PROTOCOL.md. 1000, 1008, 1009: never reconnect (closed on purpose,
logged out, over a limit, a client bug). 1001, 1011, 1006 and anything else: reconnect with backoff.
1013 (capacity, streaming disabled, slow consumer): reconnect after a longer delay.
Rule 2: backoff is full jitter: ``random() * min(cap, base * 2 ** attempt)``, ``attempt`` counting
failed tries since the last accepted connection.
Rule 3: staleness from the time since the last message (or pong, or poll): live, delayed, stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from .. import constants as c

Staleness = Literal["live", "delayed", "stale"]
ABNORMAL_CLOSURE = 1006  # no close frame: network loss, refused connection, our own pong timeout
NO_RECONNECT_CLOSE_CODES = frozenset({c.NORMAL_CLOSURE, c.POLICY_VIOLATION, c.MESSAGE_TOO_BIG})


@dataclass(frozen=True, slots=True)
class Timings:
    """Every delay the client keeps, in seconds. Tests shrink them; the defaults are the issue's."""

    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    try_again_later: float = 5.0          # added to the backoff after a 1013
    ping_interval: float = 15.0
    pong_timeout: float = 10.0
    connect_timeout: float = 10.0
    live_within: float = 5.0
    delayed_within: float = 30.0
    poll_interval: float = 5.0            # GET /api/portfolio while the socket is unavailable
    poll_after_failures: int = 10         # failed attempts in a row before polling starts
    retry_while_polling: float = 30.0     # socket attempts while polling


def should_reconnect(code: int) -> bool:
    return code not in NO_RECONNECT_CLOSE_CODES


def backoff(attempt: int, timings: Timings, random: Callable[[], float]) -> float:
    return random() * min(timings.backoff_cap, timings.backoff_base * 2 ** min(attempt, 62))


def reconnect_delay(code: int, attempt: int, timings: Timings, random: Callable[[], float]) -> float:
    """Seconds to wait before the next attempt after a close with ``code`` (see Rule 1)."""
    delay = backoff(attempt, timings, random)
    if code == c.TRY_AGAIN_LATER:
        delay += timings.try_again_later
    return delay


def starts_polling(close: c.Close, failures: int, timings: Timings) -> bool:
    """Whether the socket is unavailable enough to poll ``GET /api/portfolio`` meanwhile."""
    return close == c.STREAMING_DISABLED or failures >= timings.poll_after_failures


def staleness(since_last: float | None, timings: Timings) -> Staleness:
    """``since_last``: seconds since the last message, pong or poll; None if never."""
    if since_last is None or since_last > timings.delayed_within:
        return "stale"
    return "live" if since_last < timings.live_within else "delayed"
