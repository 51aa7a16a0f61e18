"""The service: runs the core on the IOLoop. It feeds the core (bus events, socket frames, the
batch tick, the clock) and writes what the core says to the sockets (``Socket``).

What runs beside it has a class of its own, started and stopped with it: the heartbeat
(``heartbeat.py``), the session recheck (``recheck.py``), the admin report (``admin.py``), the
feed guard (``feeds/guard.py``), cluster-wide connection slots (``slots/``), ends of users and
sessions sent to every node (``cluster/ends.py``). Handlers receive the
few of these they use through ``initialize`` (``app.py``), never the service as a whole. What only
the HTTP handlers use (login limits, the password-check queue, the equity history, the publish
route's state) is not the service's: the composition root builds it (``parts.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, Iterator

from tornado.ioloop import PeriodicCallback

from .. import constants as c
from ..auth.sessions import SessionStore, session_digest
from ..auth.users import UserStoreBase
from ..bus import EventBus
from ..bus.watched import Conditions
from ..cluster.ends import ClusterEnds
from ..cluster.stats import ClusterStats
from ..constants import Close
from ..core.events import Event
from ..core.output import Closing
from ..core.stream import StreamCore
from ..core.sync import Sync
from ..feeds import Feed
from ..feeds.guard import FeedGuard
from ..ingest.streams import StreamIngest
from ..settings import Settings
from ..slots import ConnectionSlots, LocalSlots
from .admin import AdminReport
from .frames import text_frame
from .heartbeat import Heartbeat
from .recheck import SessionRecheck
from .socket import Sent, Socket

log = logging.getLogger("portfolio_ws.service")

# Cluster mode: a node keeps following (taking in the events of) a user this long after the user's
# last socket there closed, so a reconnect finds the state loaded; then it lets the user go.
FOLLOW_LINGER_SECONDS = 60.0


class Service:
    def __init__(self, settings: Settings, *, bus: EventBus, feed: Feed, users: UserStoreBase,
                 sessions: SessionStore, clock: Callable[[], float] = time.time,
                 seq_base: int | None = None, slots: ConnectionSlots | None = None) -> None:
        """``seq_base`` defaults to the start time in ms (see ``StreamCore``); tests pass 0."""
        self.settings = settings
        self.bus = bus
        self.feed = feed
        self.users = users
        self.sessions = sessions
        # Cluster-wide connection limits (slots/redis.py) or none beyond the hub's own (LocalSlots).
        self.slots = slots or LocalSlots()
        self._slot_of: dict[int, str] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Conditions awaited through ``when``, re-checked after each input the service handles.
        self._conditions = Conditions()
        self._loads: dict[str, asyncio.Future[None]] = {}  # user -> its state's load in flight
        self.follow_linger = FOLLOW_LINGER_SECONDS
        self._unfollower: PeriodicCallback | None = None
        self.clock = clock
        now = clock()
        self.core = StreamCore(settings.streaming, settings.limits, settings.recovery, now,
                               int(now * 1000) if seq_base is None else seq_base)
        self.sockets: dict[int, Socket] = {}
        self.stopping = False
        self.feed_guard = FeedGuard(feed)  # a failing feed is counted and shown, never fatal
        self.report = AdminReport(self.core, self.feed_guard, bus, clock, settings.feed.silence_offline_seconds)
        # In a cluster, every node's admin figures in Redis, for totals on any node.
        self.cluster_stats: ClusterStats | None = None
        if settings.cluster.redis_url:
            self.cluster_stats = ClusterStats(settings.cluster.redis_url, str(bus.node_id or ""),
                                              settings.cluster.key_prefix, self.report.snapshot, clock)
            self.report.cluster = self.cluster_stats
        # In a cluster, a removed user's and an ended session's sockets close on every node at once.
        self.ends: ClusterEnds | None = None
        if settings.cluster.redis_url:
            self.ends = ClusterEnds(settings.cluster.redis_url, settings.cluster.key_prefix, self._close_user,
                                    self._close_session_digest)
        # Redis Streams ingest (``ingest.enabled``; the settings refuse it without a Redis bus).
        self.ingest: StreamIngest | None = None
        if settings.ingest.enabled and settings.cluster.redis_url:
            self.ingest = StreamIngest(settings.ingest, settings.cluster.redis_url, settings.cluster.key_prefix, bus,
                                       users, bool(settings.auth.external_session_url), str(bus.node_id or ""))
            self.report.ingest = self.ingest
        server = settings.server
        self.heartbeat = Heartbeat(self.sockets, self.close_silent, server.websocket_ping_interval_seconds,
                                   server.websocket_ping_timeout_seconds)
        self.recheck = SessionRecheck(sessions, self.open_sessions, self._close_session, clock,
                                      settings.auth.session_recheck_seconds)
        self._unsubscribe: list[Callable[[], None]] = []
        self._ticker: PeriodicCallback | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the bus, start the batch tick and the feed. Call on the running IOLoop."""
        self._unsubscribe = [self.bus.subscribe_numbered(self.receive_event),
                             self.bus.subscribe_syncs(self.receive_sync)]
        await self.slots.start()
        if self.cluster_stats is not None:
            await self.cluster_stats.start()
        if self.ends is not None:
            await self.ends.start()
        # The batcher: ticks every flush_interval_ms while a window is pending (started by pump,
        # stopped by the tick that finds none), so an idle node sleeps; see tick.
        self._ticker = PeriodicCallback(self.tick, self.settings.streaming.flush_interval_ms)
        self._resumed = True
        self.recheck.start()
        self.heartbeat.start()
        if self.bus.holds_state:  # the bus puts back in Redis what it lost from the states held here
            self.bus.hold_states(self.core.held_state)
            self._unfollower = PeriodicCallback(self._unfollow_idle, self.follow_linger * 1000 / 4)
            self._unfollower.start()
        self.report.feed_started_at = self.clock()
        await self.feed_guard.start(self.bus)
        if self.ingest is not None:
            await self.ingest.start()

    async def shutdown(self, drain_seconds: float | None = None) -> None:
        """Flush pending batches, close every socket with 1001, wait (bounded) for the closes."""
        if self.stopping:
            return
        self.stopping = True
        for timer in (self._ticker, self._unfollower):
            if timer is not None:
                timer.stop()
        self.recheck.stop()
        self.heartbeat.stop()
        if self.ingest is not None:  # what it read and did not acknowledge, another node takes over
            await self.ingest.close()
        try:
            await asyncio.wait_for(self.feed_guard.stop(), timeout=2.0)
        except Exception:  # a feed that can't stop cleanly must not stop the shutdown
            log.exception("feed did not stop cleanly")
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        sockets = list(self.sockets.values())
        self.core.shutdown(self.clock())
        self.pump()
        drain = self.settings.server.drain_seconds if drain_seconds is None else drain_seconds
        if sockets:
            _, pending = await asyncio.wait([s.closed_future for s in sockets], timeout=drain)
            for socket in sockets:  # peers that never answered the close frame: drop them
                if socket.closed_future in pending:
                    socket.abort()
        if self._background:
            await asyncio.wait(list(self._background), timeout=2.0)
        await self.slots.close()  # every slot this node held, released at once
        if self.cluster_stats is not None:
            await self.cluster_stats.close()
        if self.ends is not None:
            await self.ends.close()

    # ---- inputs -----------------------------------------------------------------------------
    def receive_event(self, event: Event, seq: int | None = None) -> None:
        """``seq``: the offset a cluster bus gave the event (None: the core numbers it)."""
        now = self.clock()
        ticker = self._ticker
        if ticker is not None and ticker.is_running() and self.core.wheel_behind(now):
            # The wheel has a slot to pass: this wake-up (the bus's) ticks, and the batcher's next
            # tick moves a whole interval on, so under load the batcher costs no wake-ups of its own.
            ticker.stop()
            self.tick()
        self.core.receive_event(event, now, seq)
        self.pump()

    def receive_sync(self, sync: Sync, seq: int | None = None) -> None:
        """A user's whole state replaced (``PUT /api/v1/users/{userId}/portfolio``): their sockets
        here get a snapshot."""
        self.core.receive_sync(sync, self.clock(), seq)
        self.pump()

    async def user_ready(self, user_id: str) -> None:
        """Cluster mode: load the user's state, offset and history from the bus once, before this
        node first serves the user (one answer on every node). Concurrent calls share one load.
        Raises what the bus raised (the caller answers 1011 or 500; the next call tries again)."""
        if not self.bus.holds_state or self.core.is_loaded(user_id):
            return
        load = self._loads.get(user_id)
        if load is None:
            load = self._loads[user_id] = asyncio.ensure_future(self._load_user(user_id))
        await asyncio.shield(load)

    async def _load_user(self, user_id: str) -> None:
        self.core.begin_load(user_id)
        snapshot = None
        try:
            await self.bus.follow(user_id)  # first: every event after the load's offset then reaches us
            snapshot = await self.bus.load_user(user_id)
        finally:
            self._loads.pop(user_id, None)
            self.core.finish_load(user_id, snapshot, self.clock())
            self.pump()

    async def _unfollow_idle(self) -> None:
        """Stop taking in the events of users with no socket here for ``FOLLOW_LINGER_SECONDS``
        (a reconnect within it finds them loaded), and forget their state."""
        for user_id in self.core.idle_users(self.clock(), self.follow_linger):
            self.core.unload(user_id)
            await self.bus.unfollow(user_id)

    def tick(self) -> None:
        """The batch tick: send the windows whose slot the wheel passed (``StreamCore.flush_due``).
        The batcher runs it every ``flush_interval_ms`` while a window is pending and pauses when
        none is; an event arriving after a slot boundary runs it first (``receive_event``)."""
        started = time.perf_counter()
        now = self.clock()
        if self.core.flush_due(now):
            self.pump()
        self.core.stats.ticked(now, time.perf_counter() - started, self._resumed)
        self._resumed = False
        ticker = self._ticker
        if ticker is not None and not self.core.windows_pending():  # nothing left: the batcher pauses
            if ticker.is_running():
                ticker.stop()
            self._resumed = True
            self._settle()

    def flush(self) -> None:
        """Send every pending window now, due or not (tests drive batching with it)."""
        self.core.flush(self.clock())
        self.pump()

    def attach(self, socket: Socket, user_id: str | None, session_id: str | None,
               refusal: Close | None = None, slot: str | None = None) -> int:
        """Hand an upgraded socket to the core. ``refusal``/``slot``: the verdict of ``slots.acquire``."""
        conn_id = self.core.open(user_id, session_id, self.clock(), refusal)
        self.sockets[conn_id] = socket
        if slot is not None:
            if self.is_open(conn_id):
                self._slot_of[conn_id] = slot
            else:  # refused here after all (shutting down, disabled): give the slot back
                self._in_background(self.slots.release(slot))
        self.pump()
        return conn_id

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: "asyncio.Task[None]") -> None:
        self._background.discard(task)
        self._settle()

    @property
    def batching(self) -> bool:
        """True while the batcher ticks (a window is pending)."""
        return self._ticker is not None and self._ticker.is_running()

    @property
    def busy(self) -> bool:
        """True while background work (a slot release) is in flight."""
        return bool(self._background)

    def when(self, condition: Callable[[], bool]) -> "asyncio.Future[None]":
        """A future resolved once ``condition()`` holds: at once, or after the input that makes it hold (a
        socket attached or detached, a frame, an event, a tick, background work done); cancel it to stop waiting."""
        return self._conditions.when(condition)

    def _settle(self) -> None:
        self._conditions.changed()

    def receive_frame(self, conn_id: int, frame: str | bytes) -> None:
        self.core.receive_frame(conn_id, frame, self.clock())
        self.pump()

    def receive_control(self, conn_id: int, nbytes: int) -> bool:
        """A protocol ping/pong or a fragment: counted; False when it is to be ignored."""
        admitted = self.core.receive_control(conn_id, nbytes, self.clock())
        self.pump()
        return admitted

    def heard_from(self, conn_id: int) -> None:
        self.core.heard_from(conn_id, self.clock())

    def fail(self, conn_id: int) -> None:
        """Our own code failed on this connection's input: close it 1011 (the client reconnects)."""
        self.core.close(conn_id, c.INTERNAL_ERROR_CLOSE, self.clock())
        self.pump()

    def refuse_data(self, conn_id: int) -> None:
        """The peer sent data that can't be decoded (compressed data that doesn't inflate): 1007."""
        self.core.close(conn_id, c.INVALID_DATA, self.clock())
        self.pump()

    def close_silent(self, limit: float) -> None:
        """Close the sockets not heard from for ``limit`` seconds (the heartbeat's verdict)."""
        if self.core.close_silent(self.clock(), limit):
            self.pump()

    def detach(self, conn_id: int) -> None:
        self.sockets.pop(conn_id, None)
        slot = self._slot_of.pop(conn_id, None)
        if slot is not None:
            self._in_background(self.slots.release(slot))
        self.core.closed(conn_id, self.clock())
        self.pump()

    def end_session(self, session_id: str) -> None:
        """A session ended here (logout, a new login): its sockets closed here and on every node."""
        self._close_session(session_id)
        if self.ends is not None:
            self._in_background(self.ends.session_ended(session_id))

    def end_user(self, user_id: str) -> int:
        """A removed user's sockets closed (1008 Session expired) here and on every node; how many here."""
        closed = self._close_user(user_id)
        if self.ends is not None:
            self._in_background(self.ends.user_removed(user_id))
        return closed

    def _close_session(self, session_id: str) -> None:
        self.core.end_session(session_id, self.clock())
        self.pump()

    def _close_session_digest(self, digest: str) -> None:
        for session_id in {s for s in self.open_sessions() if session_digest(s) == digest}:
            self._close_session(session_id)

    def _close_user(self, user_id: str) -> int:
        closed = self.core.end_user(user_id, self.clock())
        self.pump()
        return closed

    def set_enabled(self, enabled: bool) -> None:
        self.core.set_enabled(enabled)

    # ---- queries ----------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.core.enabled

    def is_open(self, conn_id: int) -> bool:
        """True when the core admitted the connection and it is still open."""
        return conn_id in self.core.hub.connections

    def is_attached(self, conn_id: int) -> bool:
        """True while the connection's socket is one the service writes to."""
        return conn_id in self.sockets

    def rate_limited(self) -> int:
        """Client messages refused over the rate limit so far (every connection)."""
        return self.core.stats.rate_limited

    def open_sessions(self) -> Iterator[str]:
        """The session id of every open connection (once per connection)."""
        return (conn.session_id for conn in self.core.hub.connections.values() if conn.session_id)

    def offset(self, user_id: str) -> int:
        """The user's latest offset (one node, where the core numbers events)."""
        return self.core.user(user_id).seq

    def portfolio(self, user_id: str) -> tuple[int, dict[str, Any]]:
        """(seq, snapshot data) of one user, for the REST fallback."""
        return self.core.portfolio(user_id)

    def stats(self) -> dict[str, Any]:
        """This node's admin report (``AdminReport.snapshot``)."""
        return self.report.snapshot()

    # ---- outputs ----------------------------------------------------------------------------
    def pump(self) -> None:
        """Write everything the core produced to the sockets."""
        outputs = self.core.data_to_send()
        while outputs:
            self._write(outputs)
            outputs = self.core.data_to_send()
        ticker = self._ticker
        if ticker is not None and not ticker.is_running() and not self.stopping and self.core.windows_pending():
            ticker.start()  # a window is pending: the batcher ticks until none is
        self._settle()

    def _write(self, outputs: list[Any]) -> None:
        limit = self.settings.streaming.max_outbound_bytes
        for output in outputs:
            if isinstance(output, Closing):
                closing = self.sockets.pop(output.connection, None)
                if closing is not None:
                    closing.close(output.close.code, output.close.reason)
                continue
            frame = text_frame(output.frame)  # framed once for every connection it goes to
            for conn_id in output.connections:
                socket = self.sockets.get(conn_id)
                if socket is None or socket.send_frame(frame) != Sent.QUEUED:
                    continue
                if socket.unsent_bytes() > limit:
                    log.warning("closing slow consumer %s", conn_id)
                    self.core.close(conn_id, c.SLOW_CONSUMER, self.clock())
                    self._write(self.core.data_to_send())  # its cause (an error message), then the close
