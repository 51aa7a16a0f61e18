"""The Alpaca feed's ``health()``: its accounts (configured and linked) and data stream as the admin
status shows them. One account that can't connect (bad keys, a suspended account, a linked secret
that can't be decrypted) must not take the others' users offline: offline only when none streams,
degraded while some don't."""

from __future__ import annotations

from typing import Any, Sequence

from ...core.health import FeedHealth
from .account import Account
from .sdk import StreamStatus, iso_or_none


def feed_health(source: str, accounts: Sequence[Account], started: bool, data_stream: Any,
                data_status: StreamStatus, data_needed: bool, last_heard: float | None,
                market_open: bool | None) -> FeedHealth:
    down = [a.user_id for a in accounts if not a.trading.connected]
    trading_up = bool(accounts) and len(down) < len(accounts)
    data_up = data_status.connected or not data_needed
    details = {
        a.user_id: {
            "paper": a.config.paper,
            "linked": a.revision is not None,
            "credentials": a.kind,
            "trading": a.trading.as_dict(),
            "rest": {"lastSyncAt": iso_or_none(a.last_sync_at), "syncs": a.syncs, "error": a.rest_error},
        }
        for a in accounts
    }
    data = dict(data_status.as_dict())
    data["symbols"] = len(data_stream.symbols) if data_stream else 0
    data["keysOf"] = data_stream.user_id if data_stream else None
    return FeedHealth(
        source=source,
        connected=started and trading_up and data_up,
        last_event_at=last_heard,
        market_open=True if market_open is None else market_open,
        reconnects=sum(a.trading.reconnects for a in accounts) + data_status.reconnects,
        details={"accounts": details, "data": data},
        impaired=f"{len(down)} of {len(accounts)} accounts not connected: {', '.join(sorted(down))}"
        if down and trading_up else None,
    )
