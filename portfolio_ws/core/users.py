"""Per-user engine state (``UserStream``) and its loading from a shared store (cluster mode).

Loading (issue 14, one answer on every node): a node that has not seen a user's whole history
takes the user's state, offset and recent history from the store (Redis) before serving it.
While the load is in flight the user's incoming events are held, then those newer than the
loaded offset are taken in as usual; older ones are already in the loaded state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import RecoverySettings
from .events import Event
from .portfolio import PortfolioState
from .recovery import RecoveryBuffer
from .window import Window, stamp


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
        # While a load is in flight: the user's events as they came, (event, offset, received at).
        self.held: list[tuple[Event, int | None, float]] | None = None

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
