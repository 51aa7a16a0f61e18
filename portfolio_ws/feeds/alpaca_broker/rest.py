"""The Broker API's REST for one account, shaped as the Alpaca feed's syncs call a ``TradingClient``
(``get_account``, ``get_all_positions``, ``get_orders``, ``get_clock``), so the broker feed reuses
those syncs (feeds/alpaca/feed.py) unchanged. Blocking: the feed calls it in the executor."""

from __future__ import annotations

from typing import Any

from alpaca.broker.client import BrokerClient

from ..alpaca.sdk import _TimeoutAdapter


def broker_client(key: str, secret: str, *, sandbox: bool, url: str, api_version: str = "v1",
                  timeout: float | None = None) -> BrokerClient:
    """A Broker API client returning raw dicts (strings stay strings for ``Decimal``). With
    ``timeout``: every request gets it, and the SDK's blocking 429 retries are off (the feed's
    sync loop backs off on its own)."""
    client = BrokerClient(key, secret, sandbox=sandbox, raw_data=True, url_override=url or None,
                          api_version=api_version)
    if timeout is not None:
        client._retry = 0
        adapter = _TimeoutAdapter(timeout)
        client._session.mount("http://", adapter)
        client._session.mount("https://", adapter)
    return client


class AccountClient:
    """One broker account (``account_id``) through the broker's key."""

    def __init__(self, client: BrokerClient, account_id: str) -> None:
        self._client = client
        self.account_id = account_id

    def get_account(self) -> Any:
        return self._client.get_trade_account_by_id(self.account_id)

    def get_all_positions(self) -> Any:
        return self._client.get_all_positions_for_account(self.account_id)

    def get_orders(self, query: Any) -> Any:
        return self._client.get_orders_for_account(self.account_id, query)

    def get_clock(self) -> Any:
        return self._client.get_clock()
