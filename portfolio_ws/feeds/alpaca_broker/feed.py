"""The Alpaca Broker API feed: every mapped account of a broker partner from one trade-events stream.

One broker key (environment variables, never logged) reads ``/{events_api}/events/trades`` (SSE,
alpaca-py's ``BrokerClient.get_trade_events`` in a thread: events.py) and each account's positions,
account and orders over REST (rest.py). An event's ``account_id`` picks the user (``alpaca_broker.
accounts`` or a linked ``broker`` row); its payload has the trading stream's ``trade_updates`` shape,
so the per-account portfolio rules (feeds/alpaca/state.py) and the syncs, timers and publishing of
the Alpaca feed (feeds/alpaca/feed.py, subclassed here) apply unchanged.

There is no market-data stream: positions are priced by fills and REST syncs (the data stream needs
trading keys the broker key is not). Nothing raises out of the reader or a handler: a malformed
event is counted and logged (what is wrong, never the payload or a key) and the rest keep flowing;
one account whose REST fails is shown in health (degraded) and never stops another's events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any, Callable, Coroutine, Mapping

from ...core.health import FeedHealth
from ...errors import ConfigError
from .. import FeedState
from ...settings import AlpacaAccount, AlpacaBrokerSettings, AlpacaSettings
from ..alpaca import mapping as m
from ..alpaca.account import Account
from ..alpaca.feed import STOP_TIMEOUT, AlpacaFeed
from ..alpaca.sdk import Credentials, StreamStatus, iso_or_none
from ..alpaca.state import AccountState
from .cursor import Cursor, MalformedEvent, TradeEvent
from .events import TradeEventsReader
from .rest import AccountClient, broker_client

log = logging.getLogger(__name__)

CURSOR_RECORD = "alpaca-broker-cursor"


class AlpacaBrokerFeed(AlpacaFeed):
    """``feed.source: alpaca-broker``. ``env`` holds the broker key the settings name."""

    source = "alpaca-broker"

    def __init__(
        self,
        settings: AlpacaBrokerSettings,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        linked: Callable[[Any], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        super().__init__(AlpacaSettings(sync_interval_seconds=settings.sync_interval_seconds,
                                        rest_timeout_seconds=settings.rest_timeout_seconds),
                         env=env, clock=clock, linked=linked)
        self._broker = settings
        missing = [name for name in (settings.key_env, settings.secret_env) if not env.get(name)]
        self.key_error = f"environment variable {' and '.join(missing)} not set" if missing else None
        self._creds = None if missing else Credentials("broker", env[settings.key_env], env[settings.secret_env])
        for i, mapped in enumerate(settings.accounts):
            if any(a.user_id == mapped.user for a in self._accounts):
                raise ConfigError(f"alpaca_broker.accounts[{i}].user", f"{mapped.user!r} is mapped to two accounts")
            self._accounts.append(self.broker_account(mapped.user, mapped.account_id))
        self.cursor = Cursor()
        self.events_status = StreamStatus(clock, on_connected=self._sync_all)
        self.rejected = 0
        self.last_rejection: str | None = None
        self.unmapped = 0
        self._reader: TradeEventsReader | None = None
        self._routes: dict[str, list[Account]] | None = None
        self._state: FeedState | None = None
        self._state_interval = 5.0

    @property
    def _by_account_id(self) -> dict[str, list[Account]]:
        """Who each broker account id streams to; rebuilt after the accounts change."""
        if self._routes is None:
            self._routes = {}
            for account in self._accounts:
                self._routes.setdefault(account.broker_account_id, []).append(account)
        return self._routes

    async def add_account(self, account: Account) -> None:
        self._routes = None
        await super().add_account(account)
        self._routes = None

    async def remove_account(self, user_id: str) -> None:
        self._routes = None  # the account leaves the list at once; events then no longer reach it
        await super().remove_account(user_id)
        self._routes = None

    def broker_account(self, user_id: str, account_id: str, revision: int | None = None) -> Account:
        """The account ``account_id`` of the broker partner, streamed as ``user_id``'s."""
        account = Account(config=AlpacaAccount(user=user_id), state=AccountState(user_id),
                          trading=StreamStatus(self._clock), revision=revision, kind="broker",
                          broker_account_id=account_id.lower(), creds=self._creds)
        if self.key_error:
            account.trading.error = self.key_error
        return account

    # --- lifecycle ----------------------------------------------------------------------------
    def keep_state(self, state: FeedState, interval: float) -> None:
        """In a cluster: the cursor is kept in ``state``, so the node that runs the feed next resumes
        the events stream where this one stopped (feeds/leader.py)."""
        self._state, self._state_interval = state, interval

    async def _load_cursor(self) -> None:
        if self._state is None:
            return
        try:
            record = await self._state.get(CURSOR_RECORD)
            if record is not None:
                self.cursor.resume(json.loads(record))
                log.info("alpaca broker: resuming the events stream after event %s", self.cursor.last_id)
        except Exception as exc:  # unreadable: start from live events; REST syncs the state
            log.warning("alpaca broker: kept cursor not read (%s); starting from live events", type(exc).__name__)

    async def _save_cursor(self) -> None:
        last = self.cursor.last_id
        if self._state is None or last is None:
            return
        try:  # written unchanged too: the record expires a while after its last write (leader.py)
            await self._state.put(CURSOR_RECORD, json.dumps(last).encode())
        except Exception as exc:  # best effort: the next interval tries again
            log.warning("alpaca broker: cursor not kept (%s)", type(exc).__name__)

    async def _keep_cursor(self) -> None:
        while self._started:
            await asyncio.sleep(self._state_interval)
            await self._save_cursor()

    async def start(self, bus: Any) -> None:
        if self._started:
            return
        await self._load_cursor()
        await super().start(bus)
        if self._state is not None:
            self._tasks.append(asyncio.create_task(self._keep_cursor()))
        if self._creds is None:
            log.error("alpaca broker: not started: %s", self.key_error)
            return
        b = self._broker
        self._reader = TradeEventsReader(
            self._creds.key, self._creds.secret, sandbox=b.sandbox, url=b.rest_url, events_api=b.events_api,
            status=self.events_status, on_text=self._on_text, cursor=lambda: self.cursor.last_id,
            silence_seconds=b.silence_seconds, reconnect_max_seconds=b.reconnect_max_seconds,
        )
        self._reader.start()

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.stop(STOP_TIMEOUT)
        await self._save_cursor()  # the events read until now: the next runner resumes after them
        await super().stop()

    @property
    def reader_alive(self) -> bool:
        return self._reader is not None and self._reader.alive

    def _start_account(self, account: Account) -> None:
        if account.creds is None:
            log.error("alpaca broker: user %s not started: %s", account.user_id, account.trading.error)
            return
        account.active = True
        b = self._broker
        account.client = AccountClient(
            broker_client(account.creds.key, account.creds.secret, sandbox=b.sandbox, url=b.rest_url,
                          timeout=b.rest_timeout_seconds),
            account.broker_account_id,
        )
        account.tasks.append(asyncio.create_task(self._sync_loop(account)))
        if self.events_status.connected:  # linked while running: no (re)connection will ask for its sync
            self._request_sync(account)

    def _sync_all(self) -> None:
        """The events stream (re)connected: what it missed is read over REST, for every account."""
        for account in self._accounts:
            self._request_sync(account)

    async def _update_symbols(self) -> None:
        """No market-data stream here (it needs trading keys, not the broker key)."""

    # --- events -------------------------------------------------------------------------------
    def _on_text(self, text: str) -> None:
        if not self._started:
            return
        self.events_status.mark_event()
        try:
            event = self.cursor.read(text)
        except MalformedEvent as exc:
            self._reject(str(exc))
            return
        if event is None:
            return
        accounts = self._by_account_id.get(event.account_id.lower())
        if not accounts:
            self.unmapped += 1
            log.debug("alpaca broker: event %s of an unmapped account", event.event_id)
            return
        for account in accounts:
            self._apply(account, event)

    def _apply(self, account: Account, event: TradeEvent) -> None:
        try:
            applied = account.state.apply_trade_update(event.data, self._now())
        except m.MalformedAlpaca as exc:
            self._reject(f"event {event.event_id} of {account.user_id}: {exc}")
            return
        except Exception as exc:  # never the end of the stream: the next event is applied
            log.exception("alpaca broker: event %s of %s failed", event.event_id, account.user_id)
            self._reject(f"event {event.event_id} of {account.user_id}: {type(exc).__name__}")
            return
        self._deliver(account, applied)

    def _reject(self, why: str) -> None:
        """Counted and shown in health always; the log line is thinned like every repeated warning
        (logs.RepeatFilter), so a source spewing garbage can't flood the log."""
        self.rejected += 1
        self.last_rejection = why
        log.warning("alpaca broker: skipping a malformed trade event: %s", why)

    # --- health -------------------------------------------------------------------------------
    def _last_heard(self) -> float | None:
        times = [t for t in (super()._last_heard(), self.events_status.last_event_at) if t is not None]
        return max(times) if times else None

    def health(self) -> FeedHealth:
        accounts = {
            a.user_id: {
                "accountId": a.broker_account_id,
                "linked": a.revision is not None,
                "error": a.trading.error,
                "rest": {"lastSyncAt": iso_or_none(a.last_sync_at), "syncs": a.syncs, "error": a.rest_error},
            }
            for a in self._accounts
        }
        bad = sorted(a.user_id for a in self._accounts if a.trading.error or a.rest_error)
        up = self._started and self.events_status.connected and (not self._accounts or len(bad) < len(self._accounts))
        events = dict(self.events_status.as_dict())
        events.update(lastEventId=self.cursor.last_id, duplicates=self.cursor.duplicates, rejected=self.rejected,
                      lastRejection=self.last_rejection, unmapped=self.unmapped)
        if self.key_error:
            events["error"] = self.key_error
        details: dict[str, Any] = {"accounts": accounts, "events": events}
        if self._linked is not None:
            details["linked"] = {"error": self.linked_error}
        return FeedHealth(
            source=self.source,
            connected=up,
            last_event_at=self._last_heard(),
            market_open=True if self._market_open is None else self._market_open,
            reconnects=self.events_status.reconnects,
            details=details,
            impaired=f"{len(bad)} of {len(self._accounts)} accounts failing: {', '.join(bad)}" if bad and up else None,
        )
