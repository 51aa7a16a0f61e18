"""Linked accounts in a running Alpaca feed: the ``linked_accounts`` table (auth/linked.py) is read
every ``accounts.poll_seconds``; a new row starts that user's trading stream and REST syncs, a
removed row stops them, a re-linked row (new revision) restarts them with the new credentials.

Polling, not notifications: it works the same on SQLite and PostgreSQL and in a cluster (only the
feed leader runs the feed, and it reads the shared database), and costs one small query a poll.
A user mapped in ``alpaca.accounts`` (environment variables) keeps that mapping: a linked row for
the same user is skipped, with one warning. A row whose secret can't be decrypted (accounts.key
unset or lacking its key) becomes an account that does not stream, named in health (degraded),
never a crash. Secrets are decrypted only when a row is new or changed, and never logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ...auth.linked import LinkedAccount, LinkedAccountStore
from ...errors import UsageError
from ...settings import AlpacaAccount
from .account import Account
from .sdk import Credentials, describe, in_executor
from .state import AccountState

if TYPE_CHECKING:
    from .feed import AlpacaFeed

log = logging.getLogger(__name__)


class LinkedAccounts:
    """The watcher: ``await watcher(feed)`` runs until cancelled (the feed starts and stops it)."""

    # The kinds of row this feed streams (broker rows are the Broker API feed's: feeds/alpaca_broker).
    kinds: tuple[str, ...] = ("keys", "oauth")

    def __init__(self, store: LinkedAccountStore, poll_seconds: float) -> None:
        self._store = store
        self._poll = poll_seconds
        self._skipped: set[str] = set()
        self.polls = 0

    async def __call__(self, feed: AlpacaFeed) -> None:
        """Poll until cancelled (the feed's stop); the store stays open for the next start."""
        while True:
            await self.poll(feed)
            await asyncio.sleep(self._poll)

    async def poll(self, feed: AlpacaFeed) -> None:
        """One reading of the table, applied to the feed. Failures are logged once and shown."""
        try:
            rows = await in_executor(self._store.list)
        except Exception as exc:  # the database away: the accounts running keep running
            error = f"linked accounts not read: {describe(exc)}"
            if error != feed.linked_error:
                log.error("alpaca: %s", error)
            feed.linked_error = error
            try:  # a new connection for the next poll (PostgreSQL restarted, a dropped socket)
                await in_executor(self._store.reopen)
            except Exception as again:
                log.debug("alpaca: linked accounts database not reopened: %s", describe(again))
            return
        if feed.linked_error is not None:
            log.info("alpaca: linked accounts read again")
        feed.linked_error = None
        try:
            await self._apply(feed, {row.user_id: row for row in rows if row.kind in self.kinds})
        except Exception:  # never the end of the watcher: the next poll tries again
            log.exception("alpaca: linked accounts not applied")
        self.polls += 1

    async def _apply(self, feed: AlpacaFeed, wanted: dict[str, LinkedAccount]) -> None:
        running = {a.user_id: a for a in feed.accounts}
        for user_id, account in running.items():
            if account.revision is not None and user_id not in wanted:
                await feed.remove_account(user_id)
        for user_id, row in wanted.items():
            current = running.get(user_id)
            if current is not None and current.revision is None:  # mapped in alpaca.accounts
                if user_id not in self._skipped:
                    log.warning("alpaca %s: linked account ignored: the user is mapped in alpaca.accounts", user_id)
                    self._skipped.add(user_id)
                continue
            if current is not None and current.revision == row.revision and current.kind == row.kind:
                continue
            if current is not None:
                await feed.remove_account(user_id)
            await feed.add_account(await self._account(feed, row))

    async def _account(self, feed: AlpacaFeed, row: LinkedAccount) -> Account:
        config = AlpacaAccount(user=row.user_id, paper=row.paper)
        account = Account(config=config, state=AccountState(row.user_id),
                          trading=feed.stream_status(lambda: account), revision=row.revision, kind=row.kind)
        try:
            secret = await in_executor(self._store.secret, row)
        except UsageError as exc:  # no key, or not the key it was encrypted with: shown, not raised
            account.trading.error = str(exc)
            return account
        if row.kind == "oauth":
            account.creds = Credentials(row.user_id, "", "", oauth_token=secret.value)
        else:
            account.creds = Credentials(row.user_id, row.key_id, secret.value)
        return account
