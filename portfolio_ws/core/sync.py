"""A sync (``PUT /api/v1/users/{userId}/portfolio``): a platform replaces one user's whole state.

Rule 1: a sync is all or nothing. ``parse_sync`` checks every field of the body (the events' one
schema, through ``ingest.parse_item``) and returns either the ``Sync`` or every error, each naming
its path (``positions[3].qty``); nothing is taken in from an invalid body.
Rule 2: a sync takes one offset, like an event. The user's state becomes the sync's, the recovery
buffer is emptied (a client resuming from before the sync gets a snapshot: what it missed can no
longer be replayed as events), the pending window is dropped (the snapshot supersedes it), and every
subscribed connection of the user gets a ``snapshot`` of its channels at the new offset, unasked.
Rule 3: the new state is the given parts applied, in order (account, orders, positions, trades), to
an empty state, by the same rules as events (``PortfolioState.apply``; the Redis bus's script applies
the same list). Without a ``trades`` part the trades held are kept (trades are history: a sync of
balances, positions and orders does not erase today's fills); with one, they are replaced. Kept or
given, only trades of the state's trading day stay (the day of its newest time): a sync dated a
later day drops the earlier day's trades, as any event of a new day does.
Rule 4: the parts' shapes are exact: ``account`` an object or null, ``positions`` and ``orders``
arrays (``[]`` for none; null is refused, not read as "none"), ``trades`` an array or left out
(null is refused: "clear" and "keep" must not look alike).

Sans-I/O: ``SyncReceiving.receive_sync`` is a verb of ``StreamCore``; no clock, no sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import constants as c
from . import protocol, wire
from .events import Event
from .hub import Hub
from .ingest import ItemError, parse_item
from .output import Output, Outgoing
from .portfolio import SNAPSHOT_TRADES, PortfolioState
from .stats import Stats

if TYPE_CHECKING:
    from .users import UserStream

# Each part: (item type for parse_item, most elements, the key that must not repeat).
PARTS: dict[str, tuple[str, int, str]] = {
    "orders": ("order", 2000, "orderId"),
    "positions": ("position", 2000, "symbol"),
    "trades": ("trade", SNAPSHOT_TRADES, "tradeId"),
}
REQUIRED = ("account", "positions", "orders")
MISSING = {"account": "is required: the account's fields, or null for none",
           "positions": "is required: every open position ([] for none)",
           "orders": "is required: open orders and those that ended today ([] for none)"}
KEEP = {"trades": "; leave the part out to keep the trades held"}
MAX_ERRORS = 50  # listed in one answer; the first one is enough to start fixing


@dataclass(frozen=True)
class Sync:
    """A user's new state as the events that build it (Rule 3)."""

    user_id: str
    events: tuple[Event, ...]
    keep_trades: bool  # no ``trades`` part: the trades held stay
    # A node's put-back after Redis lost the user (bus/putback.py): the offset the node held before
    # Redis numbered afresh, so a node that held more puts its own back over it. None: a platform's sync.
    put_back_from: int | None = None

    def state(self, held: PortfolioState) -> PortfolioState:
        """The state after the sync, from the state ``held`` before it."""
        state = PortfolioState()
        for event in self.events:
            state.apply(event)
        if self.keep_trades:
            for trade in held.trades:
                state.apply(trade)
        return state

    def counts(self) -> dict[str, int]:
        """How many positions, orders and trades the sync's parts leave held (the route's answer):
        a position of quantity 0 is a close and an order that ended before the sync's trading day
        is not held, so neither counts; trades kept from before the sync are not counted."""
        state = PortfolioState()
        for event in self.events:
            state.apply(event)
        return {"positions": len(state.positions), "orders": len(state.orders),
                "trades": 0 if self.keep_trades else len(state.trades)}


def parse_sync(user_id: str, body: Any, check: Callable[[Event], str | None] = lambda event: None
               ) -> Sync | list[ItemError]:
    """The body as a ``Sync`` of ``user_id``, or its errors (at most ``MAX_ERRORS``), each with its
    path. ``check``: a further check of each event (the feed guard's), its answer an error of it."""
    if not isinstance(body, dict):
        return [ItemError("", "the body must be a JSON object: account, positions, orders (and trades)")]
    errors = [ItemError(name, "is not a part of a sync (account, positions, orders, trades)")
              for name in sorted(body) if name not in REQUIRED and name not in PARTS]
    errors += [ItemError(name, MISSING[name]) for name in REQUIRED if name not in body]
    events: list[Event] = []
    account = body.get("account")
    if isinstance(account, dict):
        events += _elements(user_id, "account", [account], "account", None, check, errors)
    elif account is not None:
        errors.append(ItemError("account", "must be a JSON object of the account's fields, or null for none"))
    for part, (kind, most, unique) in PARTS.items():
        if part not in body:
            continue  # required ones are already named; trades left out are kept
        elements = body[part]
        if not isinstance(elements, list):
            errors.append(ItemError(part, f"must be a JSON array of {kind} objects ([] for none{KEEP.get(part, '')})"))
        elif len(elements) > most:
            errors.append(ItemError(part, f"holds at most {most} {kind}s"))
        else:
            events += _elements(user_id, part, elements, kind, unique, check, errors)
    if errors:
        return errors[:MAX_ERRORS]
    return Sync(user_id, tuple(events), "trades" not in body)


def _elements(user_id: str, part: str, elements: list[Any], kind: str, unique: str | None,
              check: Callable[[Event], str | None], errors: list[ItemError]) -> list[Event]:
    events: list[Event] = []
    seen: set[str] = set()
    for index, element in enumerate(elements):
        path = part if unique is None else f"{part}[{index}]"
        value = element.get(unique) if unique is not None and isinstance(element, dict) else None
        if isinstance(value, str):  # checked before the rest: an invalid first one still takes its key
            if value in seen:
                errors.append(ItemError(f"{path}.{unique}", f"{value!r} appears twice"))
                continue
            seen.add(value)
        parsed = parse_item({"type": kind, "userId": user_id, "id": "sync", "data": element})
        if isinstance(parsed, ItemError):
            name = parsed.field[len("data."):] if parsed.field.startswith("data.") else ""
            errors.append(ItemError(f"{path}.{name}" if name else path, parsed.message))
            continue
        problem = check(parsed.event)
        if problem is not None:
            errors.append(ItemError(path, problem))
            continue
        events.append(parsed.event)
    return events


class SyncReceiving:
    """``StreamCore``'s verb for a sync (Rule 2)."""

    hub: Hub
    stats: Stats
    _outbox: list[Output]
    _pending: list[dict[str, None]]

    def user(self, user_id: str) -> UserStream:
        raise NotImplementedError  # StreamCore's

    def receive_sync(self, sync: Sync, now: float, seq: int | None = None) -> int:
        """Replace the user's state; returns the sync's offset. ``seq``: the offset given to it
        elsewhere (a cluster's Redis); one at or below the current offset is a stale delivery and
        is dropped, as for events."""
        user = self.user(sync.user_id)
        if user.held is not None:  # a load is in flight: taken in once it's done
            user.held.append((sync, seq, now))
            return user.seq
        if not user.next_offset(seq):
            self.stats.stale_events += 1
            return user.seq
        user.state = sync.state(user.state)
        user.recovery.clear()
        user.window.clear()
        self._pending[user.slot].pop(sync.user_id, None)
        # One serialisation per channel set; a socket subscribed to nothing gets its snapshot on subscribe.
        for channels, conns in self.hub.by_channels(sync.user_id).items():
            data = user.state.snapshot(protocol.ordered(channels))
            frame = wire.message(c.SNAPSHOT, sync.user_id, data, now, user.seq)
            for conn in conns:
                conn.last_seq = user.seq
            self._outbox.append(Outgoing(frame, tuple(conn.id for conn in conns)))
            self.stats.control_messages += len(conns)
        return user.seq
