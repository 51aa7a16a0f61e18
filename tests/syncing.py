"""Syncs in tests: a user's whole state as PUT /api/v1/users/{userId}/portfolio takes it."""

from __future__ import annotations

from typing import Any

POSITION = {"symbol": "AAPL", "quantity": "100", "currentPrice": "176.20", "entryPrice": "170.25",
            "unrealizedPnl": "595.00", "unrealizedPnlPercent": "3.49", "marketValue": "17620.00", "side": "long"}
ORDER = {"orderId": "o-1", "symbol": "TSLA", "side": "sell", "type": "limit", "status": "new", "qty": "5",
         "filledQty": "0", "limitPrice": "250.00", "submittedAt": "2026-01-05T15:30:00+00:00"}
ACCOUNT = {"equity": "100000.00", "buyingPower": "200000.00", "cash": "50000.00", "portfolioValue": "100000.00",
           "dayPnl": "-12.50", "dayPnlPercent": "-0.01", "timestamp": "2026-01-05T15:30:00Z"}


def state(**changes: Any) -> dict[str, Any]:
    return {"account": ACCOUNT, "positions": [POSITION], "orders": [ORDER], **changes}


def path(user_id: str) -> str:
    return f"/api/v1/users/{user_id}/portfolio"


async def sync(server: Any, user_id: str, body: Any, key: str | None) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    return await server.fetch(path(user_id), "PUT", body if body is not None else "", headers=headers)
