"""The Redis event bus: each event is published once, numbered once, and delivered to every node
that follows its user (one with a socket of the user): a node takes in only its users' events.

Why pub/sub plus a per-user history stream, not one stream for all: docs/scaling.md, "Why pub/sub".
The keys: bus/keys.py. One Lua script numbers, records, updates the state and publishes atomically
(another does the same for a sync), so channel order is offset order and the state in Redis is
always the state at the user's offset.

``publish`` never blocks: events queue (bounded) and a task sends them in pipelines. While Redis is
down the bus reports ``connected: False``, keeps the queue, and retries with backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from typing import Any, Callable

import redis.asyncio as aioredis
import ujson
from redis.exceptions import RedisError, ResponseError

from . import EventBus, Handler, NumberedHandler, SyncHandler, subscribe_to
from ..core.codec import decode, sync_to_dict, to_dict
from ..core.events import Event
from ..core.sync import Sync
from ..cluster.keys import KEY_PREFIX, key
from ..cluster.published import KEEP_MS
from ..cluster.redis import client as redis_client, request_client
from ..core.seen import SEEN_PER_USER
from ..core.users import UserSnapshot
from ..errors import InvalidEvent
from ..settings import ClusterSettings
from .positions import RedisPositions
from .watched import Watched
from .putback import PutBack
from .script import PUBLISH_LUA, SYNC_LUA
from .state import READ_LUA, snapshot_from, state_args
from .subscription import Subscription

log = logging.getLogger(__name__)

PIPELINE_SIZE = 500          # events per round trip
MAX_PENDING = 100_000        # queued while Redis is down; beyond it the oldest are dropped (and counted)
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 5.0
LIVENESS_SECONDS = 2.0       # an idle subscription is PINGed this often, so a dead Redis is noticed


class RedisBus(RedisPositions, PutBack, Watched, EventBus):
    def __init__(self, url: str, *, prefix: str = KEY_PREFIX, node_id: str = "", max_events: int = 1000,
                 max_age_seconds: float = 300.0, clock: Callable[[], float] = time.time,
                 state_keep_seconds: float = ClusterSettings.state_keep_days * 86400) -> None:
        self.url = url
        self.prefix = prefix
        self.node_id = node_id or uuid.uuid4().hex[:12]
        # Publish markers are unique to this run: numbering restarts at 1 with every process.
        self.incarnation = uuid.uuid4().hex
        self.max_events = max_events
        self.max_age = max_age_seconds
        self.state_keep = str(int(state_keep_seconds)) if state_keep_seconds > 0 else "0"  # "0": no expiry
        self.clock = clock
        self.channel = key(prefix, "events")
        self._redis: aioredis.Redis = redis_client(url, retry=False)
        self._script = self._redis.register_script(PUBLISH_LUA)
        self._sync_script = self._redis.register_script(SYNC_LUA)
        self._init_put_back(self._redis)
        # Loads come in bursts (a reconnect storm): a blocking pool queues them (cluster/redis.py).
        self._read_state = request_client(url).register_script(READ_LUA)
        self._handlers: list[NumberedHandler] = []
        self._sync_handlers: list[SyncHandler] = []
        # (user, payload, at, publish no., source position or "", state_args of the event, item id or "",
        # a sync's SYNC_LUA arguments after the common ones, else ())
        self._pending: deque[tuple[str, str, float, int, str, tuple[str, ...], str, tuple[str, ...]]] = deque()
        self._waiters: dict[int, asyncio.Future[int | None]] = {}  # publish no. -> its offset (publish_item, syncs)
        self._numbers = itertools.count(1)
        self._wake = asyncio.Event()
        self._last: dict[str, int] = {}  # user -> last offset delivered here
        # Users whose events this node receives (``follow``): user -> confirmed by Redis.
        self._following: dict[str, asyncio.Future[None]] = {}
        self._channel_user: dict[bytes, str] = {}
        self._pubsub: Subscription | None = None  # the read loop's, for follow/unfollow
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._closing = False
        self.last_error: BaseException | None = None  # the subscription's last failure (start's error)
        # Every event not passed on is counted under its reason: "dropped" (queue overflow while
        # Redis was down), "deduplicated" (a publish whose marker existed: a retry that had run),
        # "duplicates" (an offset at or below the last delivered here), "invalid" (not an event).
        # Each change of these or of the connection flags re-checks what ``when`` awaits (watched.py).
        # "restored": users' states this node put back after Redis lost them (``_put_back``).
        self._watch(("published", "delivered", "repaired", "dropped", "deduplicated", "duplicates", "reconnects",
                     "invalid", "restored"))

    # ---- interface ----------------------------------------------------------------------------
    def publish(self, event: Event, position: str | None = None) -> None:
        self._enqueue(event.user_id, to_dict(event), position=position or "", state=state_args(event))

    def publish_item(self, event: Event, item_id: str) -> asyncio.Future[int | None]:
        """The future: the event's offset; 0 when an earlier attempt whose reply was lost published
        it (offset unknown); None for a duplicate id."""
        return self._waiter(self._enqueue(event.user_id, to_dict(event), position="", state=state_args(event),
                                          item_id=item_id))

    def publish_sync(self, sync: Sync) -> asyncio.Future[int | None]:
        events = [(ujson.dumps(to_dict(e), ensure_ascii=False), *state_args(e)) for e in sync.events]
        args = ("1" if sync.keep_trades else "0", str(len(events)), *(arg for entry in events for arg in entry))
        return self._waiter(self._enqueue(sync.user_id, sync_to_dict(sync), sync_args=args))

    def _waiter(self, number: int) -> asyncio.Future[int | None]:
        waiter = self._waiters[number] = asyncio.get_running_loop().create_future()
        return waiter

    def _enqueue(self, user_id: str, message: dict[str, Any], position: str = "", state: tuple[str, ...] = (),
                 item_id: str = "", sync_args: tuple[str, ...] = ()) -> int:
        """Queue a publish (an event, or a sync with ``sync_args``); its number (a waiter awaits its outcome by it)."""
        if len(self._pending) >= MAX_PENDING:
            dropped = self._pending.popleft()
            self.counters["dropped"] += 1
            self._answer(dropped[3], ConnectionError("dropped: the bus's queue overflowed while Redis was away"))
        number = next(self._numbers)
        self._pending.append((user_id, ujson.dumps(message, ensure_ascii=False), self.clock(), number, position,
                              state, item_id, sync_args))
        self._wake.set()
        return number

    def _answer(self, number: int, outcome: int | None | BaseException) -> None:
        waiter = self._waiters.pop(number, None)
        if waiter is not None and not waiter.done():  # not given up on (a timeout cancels it)
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        return self.subscribe_numbered(lambda event, seq: handler(event))

    def subscribe_syncs(self, handler: SyncHandler) -> Callable[[], None]:
        return subscribe_to(self._sync_handlers, handler)

    def subscribe_numbered(self, handler: NumberedHandler) -> Callable[[], None]:
        return subscribe_to(self._handlers, handler)

    async def start(self, timeout: float = 10.0) -> None:
        """Start publishing and receiving; returns once subscribed (raises if Redis can't be
        reached within ``timeout``: a node must not start deaf)."""
        self._tasks = [asyncio.create_task(self._publish_loop()), asyncio.create_task(self._read_loop())]
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def close(self, drain_seconds: float = 2.0) -> None:
        """Send what is queued (bounded wait), then stop."""
        deadline = time.monotonic() + drain_seconds
        while self._pending and self.publisher_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the publish task empties the queue; nothing to await on
        self._closing = True
        self._wake.set()
        for number in list(self._waiters):
            self._answer(number, ConnectionError("the bus closed before this event was published"))
        for task in self._tasks:
            task.cancel()
        # Bounded: a task whose cancel redis-py swallowed ends at its next check of _closing.
        done, _ = await asyncio.wait(self._tasks, timeout=LIVENESS_SECONDS + 1) if self._tasks else (set(), set())
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("redis bus task ended with %r", task.exception())
        await self._redis.aclose()
        await self._read_state.registered_client.aclose()

    # ---- health -------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.publisher_connected and self.subscriber_connected

    def health(self) -> dict[str, Any]:
        return {"connected": self.connected, "nodeId": self.node_id, "pending": len(self._pending),
                "following": len(self._following), **self.counters}

    # ---- state --------------------------------------------------------------------------------
    holds_state = True

    async def load_user(self, user_id: str) -> UserSnapshot:
        """The user's state at its current offset, with the held history, read in one step.
        Entries that don't parse are counted ``invalid`` and left out. From here on a gap after
        the loaded offset is repaired like any other."""
        reply: list[Any] = await self._read_state(  # type: ignore[misc]
            keys=[self.seq_key(user_id), self.state_key(user_id), self.trades_key(user_id),
                  self.recovery_key(user_id)], args=[self.max_events, self.state_keep])
        snapshot, invalid = snapshot_from(reply, self.clock() - self.max_age)
        if invalid:
            self.counters["invalid"] += invalid
            log.error("redis bus: %d stored entries of a user's state or history do not parse", invalid)
        if user_id in self._following and snapshot.seq > self._last.get(user_id, 0):
            self._last[user_id] = snapshot.seq
        return snapshot

    # ---- following users ------------------------------------------------------------------------
    async def follow(self, user_id: str, timeout: float = 10.0) -> None:
        """Receive the user's events from now on (SSUBSCRIBE to its channel, sent with the other
        follows of this moment); returns once Redis confirmed, so nothing published afterwards is
        missed. While Redis is away, the subscription is made on reconnecting (raises
        ``TimeoutError`` if that takes ``timeout``)."""
        confirmed = self._following.get(user_id)
        if confirmed is None:
            confirmed = self._following[user_id] = asyncio.get_running_loop().create_future()
            channel = self.user_channel(user_id).encode()
            self._channel_user[channel] = user_id
            if self._pubsub is not None:  # set once the subscription is live (even while catching up)
                self._pubsub.subscribe((channel,))  # else the read loop subscribes every followed user
        await asyncio.wait_for(asyncio.shield(confirmed), timeout)

    async def unfollow(self, user_id: str) -> None:
        """Stop receiving the user's events (its last socket here closed a while ago)."""
        if self._following.pop(user_id, None) is None:
            return
        channel = self.user_channel(user_id).encode()
        self._channel_user.pop(channel, None)
        self._last.pop(user_id, None)  # a later follow loads the state afresh: no gap to repair
        if self._pubsub is not None:
            self._pubsub.unsubscribe(channel)  # gone with the connection otherwise: not re-made

    # ---- publishing ---------------------------------------------------------------------------
    async def _publish_loop(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._closing:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = list(itertools.islice(self._pending, PIPELINE_SIZE))
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user_id, payload, at, number, position, state, item_id, sync_args in batch:
                        common: list[Any] = [payload, int(at * 1000), self.max_events,
                                             max(1, int(self.max_age)), self.user_channel(user_id), repr(at)]
                        if sync_args:
                            await self._sync_script(
                                keys=[self.seq_key(user_id), self.recovery_key(user_id),
                                      self.marker_key(user_id, number), self.state_key(user_id),
                                      self.trades_key(user_id)],
                                args=[*common, self.state_keep, *sync_args], client=pipe)
                            continue
                        await self._script(
                            keys=[self.seq_key(user_id), self.recovery_key(user_id),
                                  self.marker_key(user_id, number), self.position_key(user_id),
                                  self.state_key(user_id), self.trades_key(user_id), self.seen_key(user_id),
                                  self.equity_key(user_id)],
                            args=[*common, position, *state, item_id, SEEN_PER_USER, KEEP_MS, self.state_keep],
                            client=pipe)
                    results = await pipe.execute()
            except (RedisError, OSError) as exc:
                if self.publisher_connected:
                    log.warning("redis bus: publishing failed (%s); retrying with backoff", exc)
                self.publisher_connected = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if not self.publisher_connected:
                log.info("redis bus: publishing again")
            self.publisher_connected, backoff = True, BACKOFF_FIRST
            sent_up_to = batch[-1][3]  # publish() may have dropped some of the batch meanwhile
            while self._pending and self._pending[0][3] <= sent_up_to:
                self._pending.popleft()
            for entry, result in zip(batch, results):  # -1: the item's id was taken before
                self._answer(entry[3], None if int(result) == -1 else int(result))
            skipped = sum(1 for result in results if result == 0)
            if skipped:
                log.info("redis bus: %d publishes were already recorded (a retry, or a new feed leader "
                         "re-running its market) and were not repeated", skipped)
            taken = sum(1 for result in results if result == -1)
            self.counters["deduplicated"] += skipped + taken
            self.counters["published"] += len(batch) - skipped - taken

    # ---- receiving ----------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        backoff = BACKOFF_FIRST
        first = True
        while not self._closing:
            pubsub = Subscription(self._redis, self._take)
            try:
                await pubsub.open()
                pubsub.send("SUBSCRIBE", self.channel)
                while not any(type(reply) is list and reply[0] == b"subscribe"  # confirmed: it is live
                              for reply in await pubsub.read(LIVENESS_SECONDS)):
                    pass
                self._pubsub = pubsub
                pubsub.subscribe(list(self._channel_user))  # every followed user, again
                if not first:
                    self.counters["reconnects"] += 1
                    await self._catch_up()
                    log.info("redis bus: subscribed again")
                first = False
                self.subscriber_connected, backoff = True, BACKOFF_FIRST
                self._subscribed.set()
                while not self._closing:  # also checked here: a cancel must not be the only way out
                    replies = await pubsub.read(LIVENESS_SECONDS)
                    if not replies:
                        pubsub.send("PING")  # raises when the connection is gone
                    for reply in replies:
                        if type(reply) is list and reply[0] == b"smessage":
                            await self._receive(reply[2])
                        elif isinstance(reply, ResponseError):
                            raise reply
                        elif type(reply) is list and reply[0] == b"ssubscribe" and pubsub.confirmed(reply[1]):
                            self._confirmed(reply[1])
            except (RedisError, OSError) as exc:
                if self.subscriber_connected:
                    log.warning("redis bus: subscription lost (%s); reconnecting with backoff", exc)
                self.subscriber_connected, self.last_error = False, exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            finally:
                self._pubsub = None
                try:
                    await pubsub.close()
                except (RedisError, OSError):
                    pass

    def _confirmed(self, channel: bytes) -> None:
        waiter = self._following.get(self._channel_user.get(channel, ""))
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self, data: bytes) -> bool:
        """A message taken in as it arrives; False when a gap before it needs ``_receive``."""
        try:
            seq_text, payload = data.split(b" ", 1)
            seq = int(seq_text)
            event = decode(ujson.loads(payload))
        except (ValueError, InvalidEvent):
            self.counters["invalid"] += 1
            log.error("redis bus: dropped a message that is not an event")
            return True
        last = self._last.get(event.user_id)
        if last is not None and seq <= last:
            self.counters["duplicates"] += 1
            return True
        if last is not None and seq > last + 1:
            return False
        self._deliver(event, seq)
        return True

    async def _receive(self, data: bytes) -> None:
        if not self._take(data):  # a gap before it (rare): repaired from the user's history first
            seq, event = int(data.split(b" ", 1)[0]), decode(ujson.loads(data.split(b" ", 1)[1]))
            await self._repair(event.user_id, self._last[event.user_id], seq)
            self._deliver(event, seq)

    async def _repair(self, user_id: str, after: int, before: int) -> None:
        """Deliver the user's held events with offsets in (after, before): those this node missed.
        A gap may also be Redis numbering afresh after it lost the user (restarted empty): the
        state held here is then put back (``PutBack``) once delivered."""
        self.may_have_lost(user_id, after)
        entries: list[tuple[str, dict[str, str]]] = await self._redis.xrange(  # type: ignore[assignment]
            self.recovery_key(user_id), f"{after + 1}-1", f"{before - 1}-1", count=self.max_events)
        horizon = self.clock() - self.max_age
        for entry_id, fields in entries or ():
            try:
                if float(fields.get("t", "0")) < horizon and "s" not in fields:  # a sync is never skipped
                    continue
                event = decode(ujson.loads(fields["s"] if "s" in fields else fields["e"]))
            except (ValueError, KeyError, InvalidEvent):
                self.counters["invalid"] += 1
                continue
            self.counters["repaired"] += 1
            self._deliver(event, int(entry_id.split("-", 1)[0]))

    async def _catch_up(self) -> None:
        """After a reconnect: deliver what every followed user's stream holds beyond what we had."""
        users = [user for user in self._last if user in self._following]
        for start in range(0, len(users), 500):
            chunk = users[start:start + 500]
            current = await self._redis.mget([self.seq_key(u) for u in chunk])
            for user_id, value in zip(chunk, current):
                if value is None:  # Redis lost the user (restarted empty): put back what is held here
                    self.may_have_lost(user_id, self._last[user_id])
                    self.put_back_soon(user_id)
                elif int(value) > self._last[user_id]:
                    await self._repair(user_id, self._last[user_id], int(value) + 1)

    def _deliver(self, event: Event | Sync, seq: int) -> None:
        after = self._before_sync(event) if isinstance(event, Sync) else None
        self._last[event.user_id] = seq
        self.counters["delivered"] += 1
        handlers: list[Any] = self._sync_handlers if isinstance(event, Sync) else self._handlers
        for handler in list(handlers):
            try:
                handler(event, seq)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("event handler failed for %s", type(event).__name__)
        if after is not None:
            after(seq)
        if self._restoring and event.user_id in self._restoring:
            self.put_back_soon(event.user_id)
