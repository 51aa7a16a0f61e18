"""Redis Streams ingest: the platform ``XADD``s events to one stream; every node reads it in one
consumer group and publishes each entry as ``POST /api/v1/publish`` would (docs/integration.md,
"Redis Streams").

An entry is one item: the field ``event`` holds its JSON, ``{"type", "userId", "id", "data"}``
(other fields are ignored). Each node is one consumer, ``<node id>:<incarnation>`` (random per
process run, so a restarted node never inherits the entries its dead run held). Its read loop:

1. ``XREADGROUP`` a batch of new entries (``>``); after a failure, its own pending entries (``0``).
2. Every entry passes the HTTP items' checks (``items.check_items``). One that can't be valid (no
   ``event`` field, not JSON, a schema error, an unknown user) is written to ``<stream>:dead`` with
   its reason, its entry id and its fields, and acknowledged (one MULTI): it never blocks the rest.
3. The others are published through ``EventBus.publish_item``: taking the item's id (the ids the
   HTTP publish dedups by) and publishing are one Redis script, so an entry delivered again (its
   node died before ``XACK``) is a duplicate, never a second delivery, and never lost either.
4. ``XACK`` what was published or was a duplicate. An entry whose publish failed (Redis away) stays
   pending and is tried again; once delivered more than ``max_deliveries`` times it is dead-lettered.

Every ``claim_interval_seconds`` each node also ``XAUTOCLAIM``s the entries pending longer than
``claim_idle_seconds`` (a dead node's) and handles them the same way; consumers of dead runs that
hold nothing are deleted from the group after an hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Awaitable

import redis.asyncio as aioredis
import ujson
from redis.exceptions import RedisError, ResponseError

from ..auth.users import UserStoreBase
from ..bus import EventBus
from ..cluster.keys import key
from ..cluster.redis import client as redis_client
from ..core import jsontext
from ..core.ingest import Item, ItemError
from ..settings import IngestSettings
from .items import KnownUsers, check_items

log = logging.getLogger("portfolio_ws.ingest")

FIELD = b"event"
MAX_ENTRY_BYTES = 65536        # an item is a few hundred bytes; a huge one is refused, not parsed
PUBLISH_WAIT_SECONDS = 10.0    # a batch's publishes not confirmed by then are tried again later
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 5.0
IN_FLIGHT = 4                  # batches whose publishes are awaited while the next is read
FORGET_CONSUMER_MS = 3600_000  # a consumer idle this long holding nothing is deleted from the group
COUNTERS = ("read", "published", "duplicates", "deadLettered", "claimed", "retried")

Entry = tuple[str, "dict[bytes, bytes] | None"]


def decode(fields: dict[bytes, bytes]) -> tuple[Any, str | None]:
    """(the item's JSON value, None), or (None, why the entry can't be an item)."""
    raw = fields.get(FIELD)
    if raw is None:
        return None, 'no "event" field (an entry is: XADD <stream> * event <one item as JSON>)'
    if len(raw) > MAX_ENTRY_BYTES:
        return None, f"event: larger than {MAX_ENTRY_BYTES} bytes"
    try:
        return jsontext.loads(raw), None
    except jsontext.NotJson as exc:
        return None, f"event: not JSON: {exc}" if str(exc) != "not UTF-8" else "event: not UTF-8"


def text(value: bytes) -> str:
    return value.decode("utf-8", errors="backslashreplace")


class StreamIngest:
    def __init__(self, settings: IngestSettings, url: str, prefix: str, bus: EventBus, users: UserStoreBase,
                 external_users: bool, node_id: str) -> None:
        self.settings = settings
        self.key = key(prefix, settings.stream)
        self.dead_key = key(prefix, settings.stream, "dead")
        self.group = settings.group
        self.consumer = f"{node_id}:{uuid.uuid4().hex[:8]}"
        self.bus = bus
        self.users = KnownUsers(users, time.monotonic)
        self.external_users = external_users
        # Bytes, not text: an entry that is not UTF-8 must be dead-lettered, not fail the whole read.
        # A blocked read answers within block_ms; the timeout notices a Redis that stopped answering.
        self._redis: aioredis.Redis = redis_client(url, text=False, retry=False,
                                                   socket_timeout=settings.block_ms / 1000 + 5.0)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.connected = False
        self._own_pending = False  # after a failure: read this consumer's pending entries first
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Future[None]] = set()  # batches read, their publishes not settled
        self._queued: dict[str, asyncio.Future[int | None]] = {}  # entry -> its publish, not yet confirmed
        self._last_failure = ""

    def stats(self) -> dict[str, Any]:
        return {"stream": self.key, "group": self.group, "consumer": self.consumer, "connected": self.connected,
                **self.counters}

    # ---- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start reading (in the background: a Redis away now is retried, never fatal)."""
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._claim_loop())]
        log.info("redis streams ingest: reading %s in group %s as %s", self.key, self.group, self.consumer)

    async def close(self) -> None:
        """Stop reading: the batch in hand is finished (bounded), then this consumer leaves the group
        if it holds nothing (what it holds is claimed by another node after claim_idle_seconds)."""
        self._closing = True
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.settings.block_ms / 1000 + 2.0)
            if self._in_flight:  # batches in hand: their publishes confirmed and acknowledged
                await asyncio.wait(self._in_flight, timeout=PUBLISH_WAIT_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.wait(self._tasks, timeout=2.0)
        try:
            mine = await self._redis.xpending_range(self.key, self.group, "-", "+", 1, consumername=self.consumer)
            if not mine:
                await self._redis.xgroup_delconsumer(self.key, self.group, self.consumer)
        except (RedisError, OSError):
            pass
        await self._redis.aclose()

    async def _ensure_group(self) -> None:
        """The group, reading from the stream's start: what the platform wrote before any node ran
        is not skipped (ids already published are duplicates)."""
        try:
            await self._redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # Listed in the group from now on (XINFO CONSUMERS), not from its first entry.
        await self._redis.xgroup_createconsumer(self.key, self.group, self.consumer)

    # ---- reading --------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        backoff = BACKOFF_FIRST
        grouped = False
        while not self._closing:
            try:
                if not grouped:
                    await self._ensure_group()
                    grouped = True
                if self._own_pending and self._in_flight:  # re-read once every batch in hand is settled
                    await asyncio.wait(self._in_flight)
                    continue
                own = self._own_pending
                reply: Any = await self._redis.xreadgroup(self.group, self.consumer, {self.key: "0" if own else ">"},
                                                     count=self.settings.read_count,
                                                     block=None if own else self.settings.block_ms)
                entries = [(text(i), f) for i, f in reply[0][1]] if reply else []
                if not self.connected:
                    log.info("redis streams ingest: reading %s", self.key)
                self.connected = True
                if own and not entries:
                    self._own_pending = False
                    continue
                if not own:
                    self.counters["read"] += len(entries)
                if entries:
                    finish = await self._begin(entries, await self._deliveries(entries) if own else {})
                    task = asyncio.ensure_future(self._settled(finish))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                    if own or len(self._in_flight) >= IN_FLIGHT:  # a re-read is settled before the next
                        await asyncio.wait(self._in_flight,
                                           return_when=asyncio.ALL_COMPLETED if own else asyncio.FIRST_COMPLETED)
                if self._own_pending:  # a batch failed: after a pause, this consumer's pending ones again
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                else:
                    backoff = BACKOFF_FIRST
            except ResponseError as exc:
                grouped = False  # NOGROUP: the stream or group was deleted; made again
                log.warning("redis streams ingest: %s; creating the group again", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("redis streams ingest: reading failed (%s); retrying with backoff", exc)
                self.connected = False
                self._own_pending = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _settled(self, finish: Awaitable[bool]) -> None:
        if not await finish:
            self._own_pending = True  # read this consumer's pending entries again

    async def _deliveries(self, entries: list[Entry]) -> dict[str, int]:
        """How many times each entry (pending with this consumer) has been delivered."""
        ids = [entry_id for entry_id, _ in entries]
        rows: Any = await self._redis.xpending_range(self.key, self.group, min(ids, key=_order), max(ids, key=_order),
                                                len(ids) * 2 + 10, consumername=self.consumer)
        return {text(row["message_id"]): int(row["times_delivered"]) for row in rows}

    async def handle(self, entries: list[Entry], deliveries: dict[str, int]) -> bool:
        """Publish, dead-letter or acknowledge each entry. False when some must be tried again."""
        return await (await self._begin(entries, deliveries))

    async def _begin(self, entries: list[Entry], deliveries: dict[str, int]) -> Awaitable[bool]:
        """Check the entries and queue their publishes on the bus (in stream order); what is left,
        awaiting the publishes and acknowledging, is returned to be awaited (the next batch can be
        read meanwhile)."""
        dead: list[tuple[str, dict[bytes, bytes], str, int]] = []
        done: list[str] = []  # acknowledged without a publish (deleted from the stream meanwhile)
        waiting: list[tuple[str, dict[bytes, bytes], Any]] = []
        for entry_id, fields in entries:
            times = deliveries.get(entry_id, 1)
            if fields is None:
                done.append(entry_id)
            elif times > self.settings.max_deliveries:
                dead.append((entry_id, fields, f"not published after {times - 1} deliveries "
                                               f"(last failure: {self._last_failure or 'unknown'})", times))
            else:
                item, problem = decode(fields)
                if problem is not None:
                    dead.append((entry_id, fields, problem, times))
                else:
                    waiting.append((entry_id, fields, item))
        try:
            checked = await check_items([item for _, _, item in waiting], self.users, self.external_users)
        except Exception as exc:  # the user store failed (PostgreSQL away): every entry is tried again
            return _now(self._failed(f"users could not be read: {exc!r}", len(entries)))
        publishing: list[tuple[str, asyncio.Future[int | None]]] = []
        for (entry_id, fields, _), result in zip(waiting, checked):
            if isinstance(result, ItemError):
                dead.append((entry_id, fields, f"{result.field}: {result.message}" if result.field else result.message,
                             deliveries.get(entry_id, 1)))
            elif isinstance(result, Item):
                publishing.append((entry_id, self._publish(entry_id, result)))
        return self._finish(publishing, dead, done)

    def _publish(self, entry_id: str, item: Item) -> asyncio.Future[int | None]:
        """The entry's publish on the bus; one still queued from an earlier delivery is awaited
        again rather than queued twice (while Redis is away each re-read would add one)."""
        future = self._queued.get(entry_id)
        if future is None:
            future = self._queued[entry_id] = self.bus.publish_item(item.event, item.id)
            future.add_done_callback(lambda done: self._forget(entry_id, done))
        return future

    def _forget(self, entry_id: str, future: asyncio.Future[int | None]) -> None:
        self._queued.pop(entry_id, None)
        if not future.cancelled():
            future.exception()  # retrieved: a failure nobody awaits any more is not an error to log

    async def _finish(self, publishing: list[tuple[str, asyncio.Future[int | None]]],
                      dead: list[tuple[str, dict[bytes, bytes], str, int]], done: list[str]) -> bool:
        retry = await self._await_publishes(publishing, done)
        if dead or done:
            try:
                await self._settle(dead, done)
            except (RedisError, OSError) as exc:  # not acknowledged: delivered again, duplicates then
                return self._failed(f"acknowledging failed: {exc!r}", len(dead) + len(done))
        return not retry

    async def _await_publishes(self, publishing: list[tuple[str, asyncio.Future[int | None]]],
                               done: list[str]) -> int:
        """Wait for the publishes (bounded); ids published or duplicates go to ``done``. The number
        of those not confirmed (they are tried again: a duplicate then if they did run)."""
        if not publishing:
            return 0
        await asyncio.wait([future for _, future in publishing], timeout=PUBLISH_WAIT_SECONDS)
        failed = 0
        for entry_id, future in publishing:
            if not future.done():  # still queued on the bus: a re-read awaits it again
                failed += 1
            elif future.exception() is not None:
                failed += 1
                self._last_failure = repr(future.exception())
            else:
                self.counters["published" if future.result() is not None else "duplicates"] += 1
                done.append(entry_id)
        if failed:
            self._failed(self._last_failure or f"not published within {PUBLISH_WAIT_SECONDS} s", failed)
        return failed

    async def _settle(self, dead: list[tuple[str, dict[bytes, bytes], str, int]], done: list[str]) -> None:
        """Dead letters written and every handled entry acknowledged, in one MULTI."""
        dead.sort(key=lambda letter: _order(letter[0]))  # in stream order
        async with self._redis.pipeline(transaction=True) as pipe:
            for entry_id, fields, reason, times in dead:
                pipe.xadd(self.dead_key, {"reason": reason, "entry": entry_id, "stream": self.key,
                                          "consumer": self.consumer, "deliveries": times,
                                          "fields": ujson.dumps({text(k): text(v) for k, v in fields.items()},
                                                                ensure_ascii=False)},
                          maxlen=self.settings.dead_letter_max, approximate=True)
            pipe.xack(self.key, self.group, *[entry_id for entry_id, *_ in dead], *done)
            await pipe.execute()
        for entry_id, _, reason, _ in dead:
            log.warning("redis streams ingest: entry %s dead-lettered to %s: %s", entry_id, self.dead_key, reason)
        self.counters["deadLettered"] += len(dead)

    def _failed(self, why: str, count: int) -> bool:
        self._last_failure = why
        self.counters["retried"] += count
        log.warning("redis streams ingest: %d entries to try again (%s)", count, why)
        return False

    # ---- taking over a dead node's entries --------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.settings.claim_interval_seconds)  # the claiming period
            if self._closing:
                break
            try:
                await self.claim()
                await self._forget_dead_consumers()
            except (RedisError, OSError) as exc:
                log.debug("redis streams ingest: claiming failed (%s)", exc)

    async def claim(self) -> int:
        """Take over and handle the entries pending longer than claim_idle_seconds; how many."""
        start, claimed = "0-0", 0
        for _ in range(1000):  # bounded: a stream with more pending is finished next period
            reply: Any = await self._redis.xautoclaim(self.key, self.group, self.consumer,
                                                 int(self.settings.claim_idle_seconds * 1000), start_id=start,
                                                 count=self.settings.read_count)
            start = text(reply[0])
            entries = [(text(i), f) for i, f in reply[1]]
            if entries:
                claimed += len(entries)
                self.counters["claimed"] += len(entries)
                log.info("redis streams ingest: claimed %d entries pending over %s s", len(entries),
                         self.settings.claim_idle_seconds)
                if not await self.handle(entries, await self._deliveries(entries)):
                    self._own_pending = True  # this consumer holds them now: its read loop retries
            if start == "0-0":
                break
        return claimed

    async def _forget_dead_consumers(self) -> None:
        consumers: Any = await self._redis.xinfo_consumers(self.key, self.group)
        for consumer in consumers:
            name = text(consumer["name"])
            if name != self.consumer and int(consumer["pending"]) == 0 and int(consumer["idle"]) > FORGET_CONSUMER_MS:
                await self._redis.xgroup_delconsumer(self.key, self.group, name)


async def _now(value: bool) -> bool:
    return value


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)
