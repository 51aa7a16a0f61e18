"""The live Alpaca feed: per-account trading streams and REST syncs, one shared data stream, to the bus.

Owns the tasks and timers. Alpaca's values are read in ``mapping``, portfolio rules live in
``state``, SDK workarounds in ``sdk``. Nothing raises out of a task: failures are
logged (without secrets) and shown in ``health()``, and one account's failure (bad keys, 406,
429, a malformed frame) never touches another account's streams, state or events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable, Coroutine, Iterable, Mapping
from zoneinfo import ZoneInfo

from ...bus import EventBus
from ...core.events import Event
from ...errors import ConfigError
from ...core.health import FeedHealth
from .. import Feed
from ...settings import AlpacaAccount, AlpacaSettings
from . import mapping as m
from .account import Account, configured_account, halt_accounts
from .report import feed_health
from .state import Applied
from .sdk import (Credentials, LoopStockDataStream, LoopTradingStream, StreamStatus, describe, halt, in_executor,
                  order_queries, trading_client)

log = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")
# After a fill, re-read REST a moment later, once Alpaca's REST view has caught up.
POST_FILL_SYNC_DELAY = 0.25
# First retry delay of a failed REST sync; doubles up to sync_interval_seconds.
SYNC_RETRY_SECONDS = 1.0
# The first sync waits at most this long for the trading stream to connect or fail.
FIRST_SYNC_GRACE = 5.0
# stop() waits at most this long for the streams' tasks to end.
STOP_TIMEOUT = 5.0


class AlpacaFeed(Feed):
    """Streams each configured user's Alpaca account. ``env`` holds the keys the config names."""

    source = "alpaca"

    def __init__(
        self,
        settings: AlpacaSettings,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        linked: Callable[["AlpacaFeed"], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        """``linked``: run while the feed runs, adding and removing accounts as they are linked
        and unlinked (``add_account``/``remove_account``; feeds/alpaca/linked.py)."""
        self._settings = settings
        self._clock = clock
        self._accounts = [self._account(i, a, env) for i, a in enumerate(settings.accounts)]
        users = [a.user_id for a in self._accounts]
        for i, user in enumerate(users):
            if user in users[:i]:
                raise ConfigError(f"alpaca.accounts[{i}].user", f"{user!r} is mapped to two accounts")
        self._bus: EventBus | None = None
        self._data: LoopStockDataStream | None = None
        self._data_task: asyncio.Task[Any] | None = None
        self._linked = linked
        self.linked_error: str | None = None  # why the linked accounts can't be read, if so
        self._data_status = StreamStatus(clock)
        self._data_refused: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._market_open: bool | None = None
        self._last_event_at: float | None = None
        self._started = False

    def _account(self, index: int, config: AlpacaAccount, env: Mapping[str, str]) -> Account:
        account = configured_account(index, config, env, self.stream_status(lambda: account))
        return account

    def stream_status(self, account: Callable[[], Account]) -> StreamStatus:
        """A trading stream's status that asks for the account's REST syncs."""
        return StreamStatus(
            self._clock,
            on_connected=lambda: self._request_sync(account()),
            # Refused keys still get their first REST sync at once (it shows its own error).
            on_failed=lambda: self._request_first_sync(account()),
        )

    @property
    def accounts(self) -> tuple[Account, ...]:
        return tuple(self._accounts)

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self, bus: EventBus) -> None:
        if self._started:
            return
        self._started = True
        self._bus = bus
        for account in self._accounts:
            self._start_account(account)
        self._tasks.append(asyncio.create_task(self._clock_loop()))
        if self._linked is not None:
            self._tasks.append(asyncio.create_task(self._linked(self)))
        log.info("alpaca feed started for %d account(s)", sum(1 for a in self._accounts if a.creds))

    def _start_account(self, account: Account) -> None:
        if account.creds is None:
            log.error("alpaca: user %s not started: %s", account.user_id, account.trading.error)
            return
        s = self._settings
        account.active = True  # again after a stop: a feed leader that lost its lock and got it back
        account.client = trading_client(
            account.creds, paper=account.config.paper, url=s.rest_url, timeout=s.rest_timeout_seconds
        )
        account.stream = LoopTradingStream(
            account.creds, paper=account.config.paper, url=s.trading_stream_url,
            status=account.trading, handler=self._trade_handler(account),
        )
        account.tasks.append(asyncio.create_task(account.stream._run_forever()))
        account.tasks.append(asyncio.create_task(self._sync_loop(account)))

    async def add_account(self, account: Account) -> None:
        """Stream one more account (a linked one) while running. Its user must have none yet."""
        if any(a.user_id == account.user_id for a in self._accounts):
            raise ValueError(f"{account.user_id} already has an account")
        self._accounts.append(account)
        if self._started:
            self._start_account(account)
            log.info("alpaca %s: linked account started", account.user_id)

    async def remove_account(self, user_id: str) -> None:
        """Stop streaming ``user_id``'s account (unlinked); the others never notice."""
        account = next((a for a in self._accounts if a.user_id == user_id), None)
        if account is None:
            return
        self._accounts.remove(account)
        self._data_refused.discard(user_id)
        await halt_accounts([account], [], STOP_TIMEOUT)
        if self._data is not None and self._data.user_id == user_id:  # its keys may be revoked
            data, task, self._data, self._data_task = self._data, self._data_task, None, None
            await halt([data], [task] if task else [], STOP_TIMEOUT)
        log.info("alpaca %s: account stopped", user_id)
        await self._update_symbols()

    async def stop(self) -> None:
        """Stop every stream and task; returns within ``STOP_TIMEOUT`` whatever the SDK does."""
        if not self._started:
            return
        self._started = False
        tasks = list(self._tasks) + ([self._data_task] if self._data_task else [])
        self._tasks.clear()
        data, self._data, self._data_task = self._data, None, None
        if data is not None:
            await data.stop_ws()
        await halt_accounts(self._accounts, tasks, STOP_TIMEOUT)
        if data is not None:
            await halt([data], [], STOP_TIMEOUT)

    # --- health -------------------------------------------------------------------------------
    def health(self) -> FeedHealth:
        # One account that can't connect (bad keys, a suspended account) must not take the others'
        # users offline: offline only when none streams, degraded while some don't.
        health = feed_health(self.source, self._accounts, self._started, self._data, self._data_status,
                             bool(self._wanted_symbols()), self._last_heard(), self._market_open)
        if self._linked is not None:
            health.details["linked"] = {"error": self.linked_error}
        return health

    def _last_heard(self) -> float | None:
        """When Alpaca last proved the feed alive: an event published, a frame on any stream, or a
        REST sync. A quiet account (no orders, no holdings) is not a silent feed: its syncs count."""
        times = [self._last_event_at, self._data_status.last_event_at]
        for account in self._accounts:
            times += [account.trading.last_event_at, account.last_sync_at]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    # --- trading stream -----------------------------------------------------------------------
    def _trade_handler(self, account: Account) -> Callable[[Any], Any]:
        async def on_trade_update(message: Any) -> None:
            await self._on_trade_update(account, message)

        return on_trade_update

    async def _on_trade_update(self, account: Account, message: Any) -> None:
        account.trading.mark_event()
        try:
            data = m.mapping(message, "frame").get("data")
            applied = account.state.apply_trade_update(data, self._now())
        except m.MalformedAlpaca as exc:
            log.warning("alpaca %s: skipping a malformed trade update: %s", account.user_id, exc)
            return
        except Exception:  # e.g. an event the model refuses: skip the frame, keep the stream
            log.exception("alpaca %s: skipping a trade update that failed", account.user_id)
            return
        self._deliver(account, applied)
        await self._update_symbols()

    def _deliver(self, account: Account, applied: Applied) -> None:
        """Publish a trade update's events; after a fill the account too, and a REST re-read (both feeds)."""
        self._publish(account, applied.events)
        if applied.filled:
            self._send_account(account)
        if applied.resync:
            self._request_sync(account, delay=POST_FILL_SYNC_DELAY)

    # --- data stream --------------------------------------------------------------------------
    async def _on_price(self, message: Any) -> None:
        self._data_status.mark_event()
        try:
            tick = m.price_tick(message)
        except m.MalformedAlpaca as exc:
            log.warning("alpaca data: skipping a malformed trade: %s", exc)
            return
        for account in self._accounts:
            if not account.state.holds(tick.symbol):
                continue
            try:
                events = account.state.apply_price(tick.symbol, tick.price)
            except Exception:
                log.exception("alpaca %s: price of %s not applied", account.user_id, tick.symbol)
                continue
            self._publish(account, events)
            self._account_due(account)

    def _wanted_symbols(self) -> frozenset[str]:
        wanted: set[str] = set()
        for account in self._accounts:
            wanted |= account.state.streamed_symbols()
        return frozenset(wanted)

    async def _update_symbols(self) -> None:
        """Subscribe the shared data stream to exactly the symbols some account holds."""
        if not self._started:
            return
        wanted = self._wanted_symbols()
        if self._data is None:
            if not wanted or not any(a.creds and a.creds.key for a in self._accounts):
                return
            self._data = LoopStockDataStream(
                feed=self._settings.data_feed, url=self._settings.data_stream_url,
                status=self._data_status, pick_credentials=self._pick_data_credentials,
                credentials_failed=self._data_credentials_failed, handler=self._on_price,
            )
            await self._data.set_symbols(wanted)
            self._data_task = asyncio.create_task(self._data._run_forever())
            return
        if wanted != self._data.symbols:
            await self._data.set_symbols(wanted)

    def _pick_data_credentials(self) -> Credentials:
        """Keys for the shared data stream: an account whose trading stream is authorized first,
        skipping keys the data stream refused (until every candidate has been refused)."""
        # The market-data stream takes key pairs only (no OAuth tokens: Alpaca's data licensing).
        candidates = [a for a in self._accounts if a.creds is not None and a.creds.key]
        usable = [a for a in candidates if a.user_id not in self._data_refused]
        if not usable:
            self._data_refused.clear()
            usable = candidates
        usable.sort(key=lambda a: not a.trading.connected)
        creds = usable[0].creds
        assert creds is not None
        return creds

    def _data_credentials_failed(self, creds: Credentials) -> None:
        self._data_refused.add(creds.user_id)

    # --- account updates ----------------------------------------------------------------------
    def _account_due(self, account: Account) -> None:
        """Equity moved with a price: send now, or once the throttle interval has passed."""
        interval = self._settings.account_update_interval_seconds
        wait = account.account_sent_at + interval - self._clock()
        if wait <= 0:
            self._send_account(account)
        elif account.account_timer is None:
            account.account_timer = asyncio.get_running_loop().call_later(wait, self._send_account, account)

    def _send_account(self, account: Account) -> None:
        if account.account_timer is not None:
            account.account_timer.cancel()
            account.account_timer = None
        if not self._started:
            return
        try:
            update = account.state.account_update(self._now())
        except Exception:
            log.exception("alpaca %s: account not recomputed", account.user_id)
            return
        account.account_sent_at = self._clock()
        if update is not None:
            self._publish(account, [update])

    # --- REST ---------------------------------------------------------------------------------
    def _request_sync(self, account: Account, delay: float = 0.0) -> None:
        if delay <= 0:
            account.sync_wanted.set()
        elif account.sync_timer is None:
            def fire() -> None:
                account.sync_timer = None
                account.sync_wanted.set()

            account.sync_timer = asyncio.get_running_loop().call_later(delay, fire)

    def _request_first_sync(self, account: Account) -> None:
        if not account.syncs:
            self._request_sync(account)

    async def _sync_loop(self, account: Account) -> None:
        """Sync at start, when asked (reconnect, fill) and every ``sync_interval_seconds``."""
        interval = self._settings.sync_interval_seconds
        retry = SYNC_RETRY_SECONDS
        # The first sync waits for the trading stream's first outcome (listening, or refused), so
        # no fill falls between the REST read and the stream; but never longer than the grace.
        try:
            await asyncio.wait_for(account.sync_wanted.wait(), FIRST_SYNC_GRACE)
        except asyncio.TimeoutError:
            pass
        while self._started and account.active:  # also ends a loop whose cancel wait_for swallowed
            account.sync_wanted.clear()
            try:
                ok = await self._sync(account)
            except Exception:
                log.exception("alpaca %s: sync failed", account.user_id)
                ok = False
            wait = interval if ok else min(retry, interval)
            retry = SYNC_RETRY_SECONDS if ok else retry * 2
            try:
                await asyncio.wait_for(account.sync_wanted.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _sync(self, account: Account) -> bool:
        """Read account, positions and orders over REST; publish what changed. False on failure."""
        client = account.client
        version = account.state.version
        open_query, closed_query = order_queries(self._start_of_day())
        try:
            # All four at once, then applied with no await in between: one consistent step.
            raw_account, raw_positions, open_orders, closed_orders = await asyncio.gather(
                in_executor(client.get_account),
                in_executor(client.get_all_positions),
                in_executor(client.get_orders, open_query),
                in_executor(client.get_orders, closed_query),
            )
        except Exception as exc:
            account.rest_error = describe(exc, account.secrets)
            log.warning("alpaca %s: REST sync failed: %s", account.user_id, account.rest_error)
            return False
        try:
            if account.state.version != version:
                # A fill landed while REST was answering: this answer may predate it.
                self._request_sync(account, delay=POST_FILL_SYNC_DELAY)
            else:
                self._publish(account, account.state.apply_rest(
                    raw_account, raw_positions, self._now(), keep_stream_prices=self._data_status.connected
                ))
                account.account_sent_at = self._clock()
            orders = list(closed_orders or []) + list(open_orders or [])
            self._publish(account, account.state.apply_orders(orders))
        except (m.MalformedAlpaca, TypeError) as exc:
            account.rest_error = f"malformed REST answer: {exc}"
            log.warning("alpaca %s: %s", account.user_id, account.rest_error)
            return False
        account.rest_error = None
        account.last_sync_at = self._clock()
        account.syncs += 1
        await self._update_symbols()
        return True

    async def _clock_loop(self) -> None:
        """Keep ``market_open`` from Alpaca's clock, read through any account that answers."""
        while self._started:
            for account in [a for a in self._accounts if a.client is not None]:
                try:
                    self._market_open = m.clock_is_open(await in_executor(account.client.get_clock))
                    break
                except Exception as exc:
                    log.debug("alpaca %s: clock not read: %s", account.user_id, describe(exc, account.secrets))
            await asyncio.sleep(self._settings.clock_interval_seconds)

    # --- helpers ------------------------------------------------------------------------------
    def _publish(self, account: Account, events: Iterable[Event]) -> None:
        assert self._bus is not None
        for event in events:
            if event.user_id != account.user_id:  # cannot happen; isolation is not left to chance
                log.error("alpaca: dropped an event of %s built for %s", event.user_id, account.user_id)
                continue
            self._last_event_at = self._clock()
            self._bus.publish(event)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), timezone.utc)

    def _start_of_day(self) -> datetime:
        local = datetime.fromtimestamp(self._clock(), NEW_YORK)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
