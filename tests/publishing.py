"""Publishing in tests: a platform's API key, POST /api/v1/publish, and a user watching the result."""

from __future__ import annotations

from typing import Any

from portfolio_ws.auth.apikeys import ApiKeyStore

PUBLISH = "/api/v1/publish"


def trade_item(user_id: str, item_id: str, trade_id: str = "t-1", price: str = "520.50") -> dict[str, Any]:
    return {"type": "trade", "userId": user_id, "id": item_id,
            "data": {"tradeId": trade_id, "symbol": "NVDA", "side": "buy", "quantity": "25", "price": price,
                     "executedAt": "2026-01-05T15:30:00.000Z", "strategyId": "s-1"}}


def trade_ids(message: dict[str, Any]) -> list[str]:
    """The trades a data message carries (a batch's, or one trade_executed's), in order."""
    if message["type"] == "batch":
        return [t["tradeId"] for t in message["data"].get("trades", [])]
    return [message["data"]["tradeId"]] if message["type"] == "trade_executed" else []


def new_key(server: Any, name: str = "platform", scope: str = "publish") -> str:
    store = ApiKeyStore(server.settings.auth.database)
    try:
        return store.add(name, [scope])[1]
    finally:
        store.close()


async def publish(server: Any, items: Any, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await server.fetch(PUBLISH, "POST", items, headers=headers)


async def watching(server: Any, username: str, *channels: str) -> tuple[str, Any]:
    """A new user's id and a socket of theirs subscribed to ``channels`` (all four if none), its
    snapshot read."""
    user, cookie = await server.user_session(username)
    client = await server.connect(cookie)
    await client.subscribe(*(channels or ("positions", "orders", "account", "trades")))
    await client.expect("snapshot")
    return user.user_id, client
