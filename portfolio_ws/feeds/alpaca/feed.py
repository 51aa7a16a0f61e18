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
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from ...bus import EventBus
from ...core.events import Event
from ...errors import ConfigError
from ...core.health import FeedHealth
from .. import Feed
from ...settings import AlpacaAccount, AlpacaSettings
from . import mapping as m
from .account import Account, configured_account
from .sdk import (Credentials, LoopStockDataStream, LoopTradingStream, StreamStatus, describe, in_executor,
                  iso_or_none, order_queries, trading_client)

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
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._accounts = [self._account(i, a, env) for i, a in enumerate(settings.accounts)]
        users = [a.user_id for a in self._accounts]
        for i, user in enumerate(users):
            if user in users[:i]:
                raise ConfigError(f"alpaca.accounts[{i}].user", f"{user!r} is mapped to two accounts")
        self._bus: EventBus | None = None
        self._data: LoopStockDataStream | None = None
        self._data_status = StreamStatus(clock)
        self._data_refused: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._market_open: bool | None = None
        self._last_event_at: float | None = None
        self._started = False

    def _account(self, index: int, config: AlpacaAccount, env: Mapping[str, str]) -> Account:
        status = StreamStatus(
            self._clock,
            on_connected=lambda: self._request_sync(account),
            # Refused keys still get their first REST sync at once (it shows its own error).
            on_failed=lambda: self._request_first_sync(account),
        )
        account = configured_account(index, config, env, status)
        return account

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self, bus: EventBus) -> None:
        if self._started:
            return
        self._started = True
        self._bus = bus
        s = self._settings
        for account in self._accounts:
            if account.creds is None:
                log.error("alpaca: user %s not started: %s", account.user_id, account.trading.error)
                continue
            account.client = trading_client(
                account.creds, paper=account.config.paper, url=s.rest_url, timeout=s.rest_timeout_seconds
            )
            account.stream = LoopTradingStream(
                account.creds, paper=account.config.paper, url=s.trading_stream_url,
                status=account.trading, handler=self._trade_handler(account),
            )
            account.tasks.append(asyncio.create_task(account.stream._run_forever()))
            account.tasks.append(asyncio.create_task(self._sync_loop(account)))
        self._tasks.append(asyncio.create_task(self._clock_loop()))
        log.info("alpaca feed started for %d account(s)", sum(1 for a in self._accounts if a.creds))

    async def stop(self) -> None:
        """Stop every stream and task; returns within ``STOP_TIMEOUT`` whatever the SDK does.

        Cancelling alone is not enough: on Python < 3.12 ``asyncio.wait_for`` swallows a cancel
        that lands as its awaited frame arrives, and the SDK's loops would run on. So the SDK's own
        stop flags are raised and the sockets closed too, which ends its loops either way."""
        if not self._started:
            return
        self._started = False
        tasks = list(self._tasks)
        for account in self._accounts:
            for timer in (account.sync_timer, account.account_timer):
                if timer is not None:
                    timer.cancel()
            tasks.extend(account.tasks)
            account.tasks.clear()
        self._tasks.clear()
        streams: list[Any] = [a.stream for a in self._accounts if a.stream] + ([self._data] if self._data else [])
        for stream in streams:
            await stream.stop_ws()
        for task in tasks:
            task.cancel()
        for stream in streams:
            try:
                await stream.close()
            except Exception as exc:  # closing a broken socket must not stop closing the others
                log.debug("alpaca: error closing a stream: %s", describe(exc))
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.debug("alpaca: a task ended with %s", describe(task.exception()))  # type: ignore[arg-type]
            if pending:
                log.warning("alpaca: %d task(s) still running after stop", len(pending))
        for account in self._accounts:
            account.stream = None
        self._data = None

    # --- health -------------------------------------------------------------------------------
    def health(self) -> FeedHealth:
        # One account that can't connect (bad keys, a suspended account) must not take the others'
        # users offline: offline only when none streams, degraded while some don't.
        down = [a.user_id for a in self._accounts if not a.trading.connected]
        trading_up = bool(self._accounts) and len(down) < len(self._accounts)
        data_needed = bool(self._wanted_symbols())
        data_up = self._data_status.connected or not data_needed
        accounts = {
            a.user_id: {
                "paper": a.config.paper,
                "trading": a.trading.as_dict(),
                "rest": {"lastSyncAt": iso_or_none(a.last_sync_at), "syncs": a.syncs, "error": a.rest_error},
            }
            for a in self._accounts
        }
        data = dict(self._data_status.as_dict())
        data["symbols"] = len(self._data.symbols) if self._data else 0
        data["keysOf"] = self._data.user_id if self._data else None
        return FeedHealth(
            source=self.source,
            connected=self._started and trading_up and data_up,
            last_event_at=self._last_heard(),
            market_open=True if self._market_open is None else self._market_open,
            reconnects=sum(a.trading.reconnects for a in self._accounts) + self._data_status.reconnects,
            details={"accounts": accounts, "data": data},
            impaired=f"{len(down)} of {len(self._accounts)} accounts not connected: {', '.join(sorted(down))}"
            if down and trading_up else None,
        )

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
        self._publish(account, applied.events)
        if applied.filled:
            self._send_account(account)
        if applied.resync:
            self._request_sync(account, delay=POST_FILL_SYNC_DELAY)
        await self._update_symbols()

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
            if not wanted or not any(a.creds for a in self._accounts):
                return
            self._data = LoopStockDataStream(
                feed=self._settings.data_feed, url=self._settings.data_stream_url,
                status=self._data_status, pick_credentials=self._pick_data_credentials,
                credentials_failed=self._data_credentials_failed, handler=self._on_price,
            )
            await self._data.set_symbols(wanted)
            self._tasks.append(asyncio.create_task(self._data._run_forever()))
            return
        if wanted != self._data.symbols:
            await self._data.set_symbols(wanted)

    def _pick_data_credentials(self) -> Credentials:
        """Keys for the shared data stream: an account whose trading stream is authorized first,
        skipping keys the data stream refused (until every candidate has been refused)."""
        candidates = [a for a in self._accounts if a.creds is not None]
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
        while self._started:  # also ends a loop whose cancel wait_for swallowed (Python < 3.12)
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
            for account in self._accounts:
                if account.client is None:
                    continue
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
