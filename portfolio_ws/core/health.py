"""Health types the core reports on (admin stats, ``/metrics``) and the feeds produce.

They live in the core so that the core never imports a feed: a feed implements
``portfolio_ws.feeds.Feed`` and answers ``health()`` with a ``FeedHealth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FeedHealth:
    source: str
    connected: bool
    # Epoch seconds of the last event published, None before the first one.
    last_event_at: float | None = None
    # True while the market the feed follows is open; silence only counts then.
    market_open: bool = True
    reconnects: int = 0
    # Per stream or per account details, shown under ``feed.details`` in admin stats.
    details: dict[str, Any] = field(default_factory=dict)
    # Connected, but part of it is not (one account of several): why. Makes the status degraded.
    impaired: str | None = None
