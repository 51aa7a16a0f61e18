"""The streaming engine: events and client frames in, frames and closes out. No I/O, no clock.

Rule 1: every event taken in for a user gets the user's next offset (``seq``), updates that user's
portfolio state and recovery buffer, and (if the user has connections) joins the user's window.
Rule 2: a connection's ``seq`` never goes down. Before anything that sends a connection state as of
now (snapshot, replay), the user's pending window is flushed, so older events can't follow it.
Rule 3: one message is rendered and serialised per user and distinct subscription set, then
addressed to every connection in that set.
Rule 4: a user's data is only ever addressed to that user's connections.
Rule 5: the batch window is a wheel of slots, one per tick of the adapter's batcher: each user has
a fixed slot (by a hash of its id), and its pending window goes when the wheel passes that slot,
once a window (``flush_due``; the batcher ticks only while a window is pending, any wake-up may
tick). Events wait up to one window, as with one flush of everyone a window, but the users'
flushes are spread over the window instead of going in one burst. ``flush`` sends all now.

The adapter calls the input verbs (``receive_event``, ``receive_sync`` (sync.py), ``open``,
``receive_frame``, ``closed``, ``flush``, ``end_session``, ``shutdown``) and then drains ``data_to_send()`` and writes it.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from .. import constants as c
from ..constants import Close
from . import protocol, wire
from .events import Event
from .hub import Connection, Hub
from .output import Closing, Outgoing, Output
from .portfolio import PortfolioState
from .sync import SyncReceiving
from .users import UserLoading, UserStream
from .ratelimit import RateGuard, Verdict
from .stats import Stats
from .window import SEQ, Rendered, Window, stamp

if TYPE_CHECKING:  # the settings are read, never imported: the core depends on no module outside it
    from ..settings import LimitSettings, RecoverySettings, StreamingSettings

RECONNECT_WINDOW = 60.0  # a user's new connection this soon after one closed counts as a reconnect


class StreamCore(SyncReceiving, UserLoading):
    def __init__(self, streaming: StreamingSettings, limits: LimitSettings, recovery: RecoverySettings,
                 now: float, seq_base: int = 0) -> None:
        """``seq_base``: where every user's offsets start. A server passes its start time in ms, so
        offsets from a previous run are always below this run's and a resume across a restart is
        never mistaken for a recovery."""
        self.seq_base = seq_base
        self.streaming = streaming
        self.limits = limits
        self.recovery_settings = recovery
        self.enabled = streaming.enabled
        self.stopping = False  # after shutdown(): new connections are told to come back (1001)
        self.immediate = frozenset(streaming.immediate_channels)
        self.trace_event_time = streaming.trace_event_time
        self.hub = Hub(limits.connections_per_user, limits.total_connections)
        self.stats = Stats(now)
        self.users: dict[str, UserStream] = {}
        # The wheel (Rule 5): slot i holds the users with a window pending that go at slot i.
        self.slots = max(1, round(streaming.batch_window_ms / streaming.flush_interval_ms))
        self.slot_seconds = streaming.batch_window_ms / 1000 / self.slots
        self._pending: list[dict[str, None]] = [{} for _ in range(self.slots)]  # ordered sets
        self._wheel_at = self._slot_index(now)  # the last slot (absolute index) passed
        self._outbox: list[Output] = []
        self._next_id = 0

    # ---- outputs ----------------------------------------------------------------------------
    def data_to_send(self) -> list[Output]:
        """Frames and closes produced since the last call, in order. The caller writes them."""
        out, self._outbox = self._outbox, []
        return out

    # ---- events -----------------------------------------------------------------------------
    def user(self, user_id: str) -> UserStream:
        stream = self.users.get(user_id)
        if stream is None:
            stream = self.users[user_id] = UserStream(self.recovery_settings, self.seq_base,
                                                      self._slot_of(user_id))
        return stream

    def _slot_of(self, user_id: str) -> int:
        return zlib.crc32(user_id.encode()) % self.slots  # stable across runs and processes

    def receive_event(self, event: Event, now: float, seq: int | None = None) -> int:
        """Take in one event; returns its offset. ``seq``: the offset given to the event elsewhere
        (a cluster numbers each user's events once, in Redis). The user's offset jumps to it; one at
        or below the current offset is a duplicate or stale delivery and is dropped (returns the
        current offset), so offsets stay strictly increasing. So is an event the user's state
        already went past (a trade it holds, an older order update: ``PortfolioState.repeats``),
        whatever its offset."""
        user = self.user(event.user_id)
        if user.held is not None:  # a load is in flight: taken in once it's done
            user.held.append((event, seq, now))
            return user.seq
        if user.state.repeats(event) or not user.next_offset(seq):
            self.stats.stale_events += 1
            return user.seq
        stamped = stamp(user.seq, now, event)
        user.state.apply(event)
        user.recovery.append(stamped)
        self.stats.events_emitted += 1
        if event.user_id in self.hub.by_user:  # users with no connection accumulate nothing
            user.window.add(stamped)
            if event.CHANNEL in self.immediate:
                self._flush_user(event.user_id, user, now)
            else:
                if not self.windows_pending():  # the wheel stood still meanwhile: nothing it passed held a window
                    self._wheel_at = max(self._wheel_at, self._slot_index(now))
                self._pending[user.slot][event.user_id] = None
        return user.seq

    def windows_pending(self) -> bool:  # a window waits for the wheel: the batcher need only tick then
        return any(self._pending)

    def wheel_behind(self, now: float) -> bool:  # a tick now would pass a slot (any wake-up may tick)
        return self._slot_index(now) > self._wheel_at

    def flush_due(self, now: float) -> int:
        """The batch tick: send the windows of every slot the wheel passed since the last tick
        (each slot at most once, however late the tick); returns how many windows went."""
        index = self._slot_index(now)
        sent = 0
        for passed in range(max(self._wheel_at + 1, index - self.slots + 1), index + 1):
            sent += self._flush_slot(passed % self.slots, now)
        self._wheel_at = max(self._wheel_at, index)
        return sent

    def _slot_index(self, now: float) -> int:  # a hair of tolerance: index * slot_seconds lands in its slot
        return int(now / self.slot_seconds + 1e-4)

    def flush(self, now: float) -> None:
        """Send every user's pending window now, due or not (shutdown; tests)."""
        for slot in range(self.slots):
            self._flush_slot(slot, now)

    def _flush_slot(self, slot: int, now: float) -> int:
        due, self._pending[slot] = self._pending[slot], {}
        users = self.users
        for user_id in due:
            self._flush_user(user_id, users[user_id], now)
        return len(due)

    def flush_time(self, user_id: str, now: float) -> float:
        """When a window of ``user_id`` pending at ``now`` goes: when the wheel next passes its slot."""
        slot = self._slot_of(user_id)  # a question: no user is created for it
        index = self._slot_index(now)
        ahead = (slot - index) % self.slots or self.slots  # the current slot has passed
        return (index + ahead) * self.slot_seconds

    def _flush_user(self, user_id: str, user: UserStream, now: float) -> None:
        window = user.window
        self._pending[user.slot].pop(user_id, None)  # flushed early (immediate, subscribe): not again
        if not window:
            return
        for channels, conns in self.hub.by_channels(user_id).items():
            if not window.has_any(channels):
                continue
            if len({conn.last_seq for conn in conns}) == 1:  # the usual case: all alike
                self._send_rendered(user_id, conns, window.render(channels, conns[0].last_seq), now)
                continue
            # Connections of one set may have been sent different offsets (one joined later, with a
            # newer snapshot); those the window's events split alike still get one serialisation.
            held = sorted(s[SEQ] for ch in channels for s in window.items[ch].values())
            alike: dict[int, list[Connection]] = {}
            for conn in conns:
                alike.setdefault(bisect_right(held, conn.last_seq), []).append(conn)
            for members in alike.values():
                newer_than = min(conn.last_seq for conn in members)
                self._send_rendered(user_id, members, window.render(channels, newer_than), now)
        window.clear()  # one window object per user, reused

    def _send_rendered(self, user_id: str, conns: list[Connection], rendered: Rendered | None,
                       now: float, live: bool = True) -> None:
        """Address one rendered message to ``conns``. ``live=False`` (a replay) keeps it out of
        the latency figures, which are about live delivery."""
        if rendered is None:
            return
        trace = (rendered.oldest_received_at, rendered.newest_received_at) if self.trace_event_time and live else None
        frame = wire.message_json(rendered.type, user_id, rendered.data_json, now, rendered.seq, trace)
        for conn in conns:
            conn.last_seq = rendered.seq
        self._outbox.append(Outgoing(frame, tuple(conn.id for conn in conns)))
        self.stats.delivered(len(conns), rendered.raw_events,
                             now - rendered.oldest_received_at if live else None)

    # ---- connections ------------------------------------------------------------------------
    def _refusal(self, user_id: str | None) -> Close | None:
        """Why this process can't admit a new connection of ``user_id`` now, or None."""
        if self.stopping:
            return c.SERVER_SHUTTING_DOWN
        if not self.enabled:
            return c.STREAMING_DISABLED
        if user_id is None:
            return c.AUTH_REQUIRED
        return self.hub.refusal(user_id)

    def open(self, user_id: str | None, session_id: str | None, now: float, refusal: Close | None = None) -> int:
        """A WebSocket upgrade completed. ``user_id`` is None when authentication failed;
        ``refusal`` is a refusal decided outside this process (cluster-wide limits).

        Returns the connection id; if the connection is refused, a ``Closing`` for it is queued
        and nothing else is ever sent to it."""
        self._next_id += 1
        conn_id = self._next_id
        refusal = refusal or self._refusal(user_id)
        if refusal is not None or user_id is None:
            self.stats.rejected_connections += 1
            refusal = refusal or c.AUTH_REQUIRED
            if user_id is not None:  # an unauthenticated peer is told nothing but the close
                self._announce(user_id, conn_id, refusal, now)
            self._outbox.append(Closing(conn_id, refusal))
            return conn_id
        guard = RateGuard(self.limits.messages_per_second, self.limits.rate_limit_burst,
                          self.limits.rate_limit_close_after_seconds, now,
                          self.limits.bytes_per_second, self.limits.bytes_per_second)
        conn = Connection(conn_id, f"conn-{conn_id}", user_id, session_id, now, guard, last_heard=now)
        self.hub.add(conn)
        user = self.user(user_id)
        self.stats.connections_opened += 1
        if user.last_disconnect is not None and now - user.last_disconnect <= RECONNECT_WINDOW:
            self.stats.reconnects += 1
        self._control(conn, c.INFO, now, c.CONNECTED, "Connected", {
            "connectionId": conn.name,
            "availableChannels": list(c.CHANNELS),
            "batchWindowMs": self.streaming.batch_window_ms,
            "limits": {
                "connectionsPerUser": self.limits.connections_per_user,
                "totalConnections": self.limits.total_connections,
                "messagesPerSecond": wire.plain_number(self.limits.messages_per_second),
                "bytesPerSecond": self.limits.bytes_per_second,
                "maxMessageBytes": self.streaming.max_message_bytes,
            },
        })
        return conn_id

    def closed(self, conn_id: int, now: float) -> None:
        """The connection is gone (peer closed, network dropped, or our close completed)."""
        conn = self.hub.remove(conn_id)
        if conn is None:
            return
        self.stats.disconnected(now - conn.opened_at, now)
        user = self.users.get(conn.user_id)
        if user is not None:
            user.last_disconnect = now
            if conn.user_id not in self.hub.by_user:
                user.window.clear()
                self._pending[user.slot].pop(conn.user_id, None)

    def close(self, conn_id: int, close: Close, now: float) -> None:
        """Close a connection on the server's initiative: its cause first (an ``error``), then the close."""
        conn = self.hub.connections.get(conn_id)
        if conn is not None:
            self._announce(conn.user_id, conn_id, close, now)
            self._outbox.append(Closing(conn_id, close))
            self.closed(conn_id, now)

    def end_session(self, session_id: str, now: float) -> int:
        """Logout or expiry: close the session's sockets (1008 Session expired). Returns how many."""
        conns = self.hub.of_session(session_id)
        for conn in conns:
            self.close(conn.id, c.SESSION_EXPIRED, now)
        return len(conns)

    def end_user(self, user_id: str, now: float) -> int:
        """A removed user: close their sockets as their sessions ended (1008 Session expired)."""
        conns = [conn for conn in self.hub.connections.values() if conn.user_id == user_id]
        for conn in conns:
            self.close(conn.id, c.SESSION_EXPIRED, now)
        return len(conns)

    def shutdown(self, now: float) -> None:
        """Flush everything pending, then close every connection with 1001 (later ones too)."""
        self.stopping = True
        self.flush(now)
        for conn_id in list(self.hub.connections):
            self.close(conn_id, c.SERVER_SHUTTING_DOWN, now)

    def heard_from(self, conn_id: int, now: float) -> None:
        """The peer answered a protocol-level ping."""
        conn = self.hub.connections.get(conn_id)
        if conn is not None:
            conn.last_heard = now

    def close_silent(self, now: float, limit: float) -> int:
        """Close (1001 Heartbeat timeout) every connection not heard from for ``limit`` seconds."""
        silent = [conn.id for conn in self.hub.connections.values() if now - conn.last_heard > limit]
        for conn_id in silent:
            self.close(conn_id, c.HEARTBEAT_TIMEOUT, now)
        return len(silent)

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled

    # ---- client frames ----------------------------------------------------------------------
    def receive_frame(self, conn_id: int, frame: str | bytes, now: float) -> None:
        """A complete data message (its UTF-8 size counts against the byte budget)."""
        conn = self.hub.connections.get(conn_id)
        if conn is None:
            return
        conn.last_heard = now
        size = len(frame) if isinstance(frame, bytes) or frame.isascii() else len(frame.encode("utf-8", "surrogatepass"))
        if not self._admit(conn, size, now):
            return
        command = protocol.parse(frame)
        if isinstance(command, protocol.ClientError):
            self._control(conn, c.ERROR, now, command.code, command.message, command.details)
        elif isinstance(command, protocol.Ping):
            self._outbox.append(Outgoing(wire.message(c.PONG, conn.user_id, {}, now), (conn.id,)))
            self.stats.control_messages += 1
        elif isinstance(command, protocol.Subscribe):
            self._subscribe(conn, command, now)
        else:
            conn.channels = conn.channels - command.channels
            self._control(conn, c.INFO, now, c.UNSUBSCRIBED, "Unsubscribed",
                          {"channels": protocol.ordered(conn.channels)})

    def receive_control(self, conn_id: int, nbytes: int, now: float) -> bool:
        """A frame that is not a complete data message (a protocol ping or pong, a fragment of a
        longer message) arrived: it counts against the limits too. False: don't act on it (over the
        limit, or not an open connection)."""
        conn = self.hub.connections.get(conn_id)
        return conn is not None and self._admit(conn, nbytes, now)

    def _admit(self, conn: Connection, nbytes: int, now: float) -> bool:
        verdict = conn.guard.check(now, nbytes)
        if verdict is Verdict.ALLOW:
            return True
        self.stats.rate_limited += 1
        if verdict is Verdict.CLOSE:
            self.close(conn.id, c.RATE_LIMIT_EXCEEDED, now)
        elif verdict is Verdict.REJECT_NOTIFY:
            self._control(conn, c.ERROR, now, c.RATE_LIMITED,
                          "Too many messages; messages over the limit are not processed",
                          {"limitPerSecond": wire.plain_number(self.limits.messages_per_second),
                           "bytesPerSecond": self.limits.bytes_per_second})
        return False

    def _subscribe(self, conn: Connection, command: protocol.Subscribe, now: float) -> None:
        user = self.user(conn.user_id)
        self._flush_user(conn.user_id, user, now)  # Rule 2
        added = command.channels - conn.channels
        conn.channels = conn.channels | command.channels
        self._control(conn, c.INFO, now, c.SUBSCRIBED, "Subscribed",
                      {"channels": protocol.ordered(conn.channels)})
        if command.resume_from is not None:
            start = command.resume_from
            held = user.recovery.since(start, user.seq, now)
            if held is not None:
                prior = conn.last_seq
                replay = Window().extend(held).render(conn.channels, max(start, prior))
                self._send_rendered(conn.user_id, [conn], replay, now, live=False)
                conn.last_seq = max(conn.last_seq, user.seq)
                self._control(conn, c.INFO, now, c.RESUMED, "Resumed",
                              {"recovered": True, "from": start, "to": user.seq})
                if added and prior > start:  # the replay skipped what this socket already had
                    self._snapshot(conn, user, added, now)
                return
            self._control(conn, c.INFO, now, c.RESUMED, "Missed events are no longer held; sending a snapshot",
                          {"recovered": False, "from": start, "to": user.seq})
            self._snapshot(conn, user, conn.channels, now)
        elif added:
            self._snapshot(conn, user, added, now)

    def _snapshot(self, conn: Connection, user: UserStream, channels: frozenset[str], now: float) -> None:
        data = user.state.snapshot(protocol.ordered(channels))
        frame = wire.message(c.SNAPSHOT, conn.user_id, data, now, user.seq)
        conn.last_seq = max(conn.last_seq, user.seq)
        self._outbox.append(Outgoing(frame, (conn.id,)))
        self.stats.control_messages += 1

    def _control(self, conn: Connection, type_: str, now: float, code: str, message: str,
                 details: dict[str, Any]) -> None:
        self._outbox.append(Outgoing(wire.control(type_, conn.user_id, now, code, message, details), (conn.id,)))
        self.stats.control_messages += 1

    def _announce(self, user_id: str, conn_id: int, close: Close, now: float) -> None:
        """Machine-readable closes: an ``error`` naming the close's cause goes just before it, so
        clients act on ``data.code`` and never on the reason text."""
        if close.cause is None or close.cause in c.UNANNOUNCED_CAUSES:
            return
        self._outbox.append(Outgoing(wire.control(c.ERROR, user_id, now, close.cause.value, close.reason,
                                                  {"closeCode": int(close.code)}), (conn_id,)))
        self.stats.control_messages += 1

    # ---- queries ----------------------------------------------------------------------------
    def portfolio(self, user_id: str) -> tuple[int, dict[str, Any]]:
        """The user's offset and full state (for ``GET /api/portfolio``)."""
        user = self.users.get(user_id)
        if user is None:
            return 0, PortfolioState().snapshot(c.CHANNELS)
        return user.seq, user.state.snapshot(c.CHANNELS)
