"""Alpaca feed events in tests: an account, an order and a fill as alpaca-py delivers them."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

D = Decimal


NOW = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)


ACCOUNT = {"cash": "10000", "buying_power": "20000", "equity": "11500", "last_equity": "11000"}


def order(oid: str = "o1", side: str = "buy", qty: str = "10", filled: str = "0", status: str = "new",
          symbol: str = "AAPL", updated: str = "2026-01-05T15:00:00Z") -> dict[str, Any]:
    return {"id": "alpaca-" + oid, "client_order_id": oid, "symbol": symbol, "side": side, "type": "market",
            "qty": qty, "filled_qty": filled, "filled_avg_price": None, "status": status,
            "created_at": "2026-01-05T14:59:00Z", "submitted_at": "2026-01-05T14:59:00Z", "updated_at": updated}


def fill(oid: str, side: str, qty: str, price: str, position_qty: str | None, total: str, order_qty: str,
         execution_id: str | None = None, event: str | None = None, symbol: str = "AAPL") -> dict[str, Any]:
    done = D(total) >= D(order_qty)
    data: dict[str, Any] = {
        "event": event or ("fill" if done else "partial_fill"),
        "timestamp": "2026-01-05T15:00:05Z",
        "execution_id": execution_id or f"x-{oid}-{total}",
        "price": price, "qty": qty, "position_qty": position_qty,
        "order": {**order(oid, side, order_qty, total, "filled" if done else "partially_filled", symbol,
                          updated=f"2026-01-05T15:00:0{total[-1]}Z"), "filled_avg_price": price},
    }
    return data
