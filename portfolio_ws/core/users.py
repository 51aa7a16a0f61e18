"""Per-user engine state (``UserStream``) and its loading from a shared store (cluster mode).

Loading (issue 14, one answer on every node): a node that has not seen a user's whole history
takes the user's state, offset and recent history from the store (Redis) before serving it.
While the load is in flight the user's incoming events are held, then those newer than the
loaded offset are taken in as usual; older ones are already in the loaded state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .hub import Hub
from .events import Event
from .portfolio import PortfolioState
from .recovery import RecoveryBuffer
from .sync import Sync
from .window import Window, stamp

if TYPE_CHECKING:  # the settings are read, never imported: the core depends on no module outside it
    from ..settings import RecoverySettings


@dataclass(frozen=True)
class UserSnapshot:
    """A user's state as a store holds it: at offset ``seq``, with the held ``history``
    (``(seq, published at, event)``, oldest first, at most ``seq``)."""

    seq: int
    state: PortfolioState
    history: list[tuple[int, float, Event]] = field(default_factory=list)


class UserStream:
    """Everything the engine keeps per user."""

    __slots__ = ("seq", "state", "recovery", "window", "slot", "last_disconnect", "loaded", "held")

    def __init__(self, recovery: RecoverySettings, seq_base: int, slot: int) -> None:
        self.seq = seq_base
        self.state = PortfolioState()
        self.recovery = RecoveryBuffer(recovery.max_events, recovery.max_age_seconds)
        self.window = Window()
        self.slot = slot  # the batch wheel's slot its window goes in
        self.last_disconnect: float | None = None
        self.loaded = False  # cluster mode: state taken from the store (see module doc)
        # While a load is in flight: the user's events (and syncs) as they came, (event, offset, received at).
        self.held: list[tuple[Event | Sync, int | None, float]] | None = None

    def next_offset(self, seq: int | None) -> bool:
        """Move to the offset of what is taken in next: one more, or ``seq`` (given elsewhere: a
        cluster). False for a ``seq`` at or below the current offset: a duplicate or stale delivery,
        dropped, so offsets stay strictly increasing."""
        if seq is None:
            self.seq += 1
        elif seq <= self.seq:
            return False
        else:
            self.seq = seq
        return True

    def restore(self, snapshot: UserSnapshot) -> bool:
        """Take the store's state if it is at least as new as ours; True if taken."""
        if snapshot.seq < self.seq:
            return False
        self.seq = snapshot.seq
        self.state = snapshot.state
        self.recovery.clear()
        for seq, at, event in snapshot.history:
            if seq <= snapshot.seq:
                self.recovery.append(stamp(seq, at, event))
        return True


class UserLoading:
    """StreamCore's verbs for loading users from a shared store and letting idle ones go."""

    users: dict[str, UserStream]
    hub: Hub

    def user(self, user_id: str) -> UserStream:
        raise NotImplementedError  # StreamCore's

    def receive_event(self, event: Event, now: float, seq: int | None = None) -> int:
        raise NotImplementedError  # StreamCore's

    def receive_sync(self, sync: Sync, now: float, seq: int | None = None) -> int:
        raise NotImplementedError  # SyncReceiving's

    def begin_load(self, user_id: str) -> None:
        """A load of the user's state from the shared store starts: hold its events meanwhile."""
        user = self.user(user_id)
        if user.held is None:
            user.held = []

    def finish_load(self, user_id: str, snapshot: UserSnapshot | None, now: float) -> None:
        """The load is done (``snapshot`` None: it failed): take the store's state if newer, then
        the held events newer than it."""
        user = self.user(user_id)
        held, user.held = user.held or [], None
        if snapshot is not None:
            user.restore(snapshot)  # no socket of the user is admitted before its load is done
            user.loaded = True
            user.last_disconnect = now  # idle from now (``idle_users``) until a socket comes
        for event, seq, at in held:
            if seq is not None and seq <= user.seq:  # in the loaded state already
                continue
            if isinstance(event, Sync):
                self.receive_sync(event, at, seq)
            else:
                self.receive_event(event, at, seq)

    def held_state(self, user_id: str) -> tuple[int, PortfolioState] | None:
        """The user's offset and state as this node holds them, once loaded (None: not held whole)."""
        user = self.users.get(user_id)
        if user is None or not user.loaded or user.held is not None:
            return None
        return user.seq, user.state

    def is_loaded(self, user_id: str) -> bool:
        user = self.users.get(user_id)
        return user is not None and user.loaded

    def idle_users(self, now: float, linger: float) -> list[str]:
        """Loaded users without a socket here for ``linger`` seconds (a node stops following them)."""
        return [user_id for user_id, user in self.users.items()
                if user.loaded and user.held is None and user_id not in self.hub.by_user
                and user.last_disconnect is not None and now - user.last_disconnect >= linger]

    def unload(self, user_id: str) -> None:
        """Forget a user this node no longer follows (reloaded when it comes back)."""
        user = self.users.get(user_id)
        if user is not None and user.held is None and user_id not in self.hub.by_user:
            del self.users[user_id]
