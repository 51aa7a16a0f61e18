"""Linked broker accounts in a running Broker API feed: the ``broker`` rows of ``linked_accounts``
(``portfolio-ws accounts link USER --broker-account ID``), picked up, replaced and dropped exactly
as the Alpaca feed's watcher does for key and OAuth rows (feeds/alpaca/linked.py). A row holds the
account's Broker API id only: the broker key is the feed's, so there is nothing to decrypt and
``accounts.key`` is not needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...auth.linked import BROKER, LinkedAccount
from ..alpaca.account import Account
from ..alpaca.linked import LinkedAccounts

if TYPE_CHECKING:
    from ..alpaca.feed import AlpacaFeed


class BrokerLinkedAccounts(LinkedAccounts):
    kinds = (BROKER,)

    async def _account(self, feed: AlpacaFeed, row: LinkedAccount) -> Account:
        from .feed import AlpacaBrokerFeed

        assert isinstance(feed, AlpacaBrokerFeed)
        return feed.broker_account(row.user_id, row.key_id, revision=row.revision)
