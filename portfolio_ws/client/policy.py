"""When to reconnect, how long to wait, and how fresh the data is (sans-I/O, no clock, no randomness
of its own: both are passed in).

Rule 1: the close-policy table of ``constants`` (``CLOSE_CAUSES``, ``CLOSE_CODES``; docs/clients.md
shows it), looked up by close code and the cause the server named in the ``error`` before the close,
never by reason text. The JS client (clients/js/src/close-policy.js) follows the same table and the
same ``next_step``; tests/unit/portfolio_ws/client/test_close_policy.py runs both on every input and compares.
Rule 2: backoff is full jitter: ``random() * min(cap, base * 2 ** attempt)``, ``attempt`` counting
reconnects since the last accepted connection; ``backoff_slow`` adds ``try_again_later``.
Rule 3: polling (``GET /api/portfolio``) when the table says so, or after ``poll_after_failures``
attempts in a row were never admitted, until a socket is admitted again. Meanwhile socket retry
``n`` waits ``min(retry_while_polling, 1 s * 2 ** n)``, jittered to 50-100 % of that, so streaming
back means live again within ~4 s, and many clients' retries spread out.
Rule 4: staleness from the time since the last message (or pong, or poll): live, delayed, stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from .. import constants as c

Staleness = Literal["live", "delayed", "stale"]
ABNORMAL_CLOSURE = c.CloseCode.ABNORMAL_CLOSURE  # no close frame: network loss, refused connection, pong timeout


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
    retry_while_polling: float = 4.0      # cap of the socket retries' wait while polling (Rule 3)


def backoff(attempt: int, timings: Timings, random: Callable[[], float]) -> float:
    return random() * min(timings.backoff_cap, timings.backoff_base * 2.0 ** min(attempt, 62))


POLL_RETRY_BASE = 1.0  # seconds: the first socket retry while polling waits 0.5-1 s


def socket_retry_delay(retries: int, timings: Timings, random: Callable[[], float]) -> float:
    step = min(timings.retry_while_polling, POLL_RETRY_BASE * 2.0 ** min(retries, 62))
    return step * (0.5 + 0.5 * random())


@dataclass(frozen=True, slots=True)
class Step:
    """What to do after a close: ``stop``, ``reconnect`` after ``delay`` seconds, or ``poll`` (and
    try the socket again after ``delay``)."""

    action: c.CloseAction
    delay: float


def next_step(code: int, cause: str | None, *, failures: int, polling: bool, attempt: int,
              timings: Timings, random: Callable[[], float], retries: int = 0) -> Step:
    """The step after a close with ``code`` (and ``cause``, the ``data.code`` of the ``error`` just
    before it, if any). ``failures``: attempts in a row never admitted, this one included;
    ``polling``: already polling; ``attempt``: the backoff exponent; ``retries``: socket retries
    since polling started."""
    rule = c.close_policy(code, cause)
    if not rule.reconnect:
        return Step("stop", 0.0)
    if polling or rule.poll or failures >= timings.poll_after_failures:
        return Step("poll", socket_retry_delay(retries, timings, random))
    delay = backoff(attempt, timings, random)
    if rule.delay == "backoff_slow":
        delay += timings.try_again_later
    return Step("reconnect", delay)


def staleness(since_last: float | None, timings: Timings) -> Staleness:
    """``since_last``: seconds since the last message, pong or poll; None if never."""
    if since_last is None or since_last > timings.delayed_within:
        return "stale"
    return "live" if since_last < timings.live_within else "delayed"


def cause_of(code: str) -> c.CloseCause | None:
    """A cause this client knows, or None (a newer server's: the close code alone decides)."""
    try:
        return c.CloseCause(code)
    except ValueError:
        return None
