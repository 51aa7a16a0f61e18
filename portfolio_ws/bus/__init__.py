"""The event bus interface: event sources publish, the streaming engine subscribes.

``memory.InMemoryBus`` implements it in-process, ``redis.RedisBus`` across processes and
hosts (tests/unit/portfolio_ws/bus/test_contract.py runs against both). Nothing on the network can publish.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any, Callable

from ..core.events import Event
from ..core.portfolio import PortfolioState
from ..core.sync import Sync
from ..core.users import UserSnapshot

Handler = Callable[[Event], None]
# (event, offset): the offset the cluster gave the event for its user, or None where the subscriber
# numbers events itself (in-process).
NumberedHandler = Callable[[Event, "int | None"], None]
# (sync, offset): a user's whole state replaced (core/sync.py); the offset as for events.
SyncHandler = Callable[[Sync, "int | None"], None]


def subscribe_to(handlers: list[Any], handler: Any) -> Callable[[], None]:
    """Add ``handler`` to a bus's ``handlers``; the function that takes it out again."""
    handlers.append(handler)

    def unsubscribe() -> None:
        if handler in handlers:
            handlers.remove(handler)

    return unsubscribe


class EventBus(ABC):
    """Delivers each published event to every subscribed handler, in publish order."""

    # The node's name in a cluster (a shared bus names it); None for a bus within one process.
    node_id: str | None = None

    @abstractmethod
    def publish(self, event: Event, position: str | None = None) -> None:
        """Hand ``event`` to the bus. Never blocks; delivery may be synchronous.

        ``position``: where the event stands in its source's own sequence, ``"<epoch>:<n>"`` with
        ``n`` counting up within one epoch (one simulated market). A bus shared by processes keeps
        each user's last position atomically with the event and refuses an event of that user at or
        below it in the same epoch, so a new feed leader re-running the market publishes nothing
        twice (``positions`` reads them back). An in-process bus has no second publisher: it ignores it."""

    def publish_item(self, event: Event, item_id: str) -> "asyncio.Future[int | None]":
        """Publish ``event`` unless its user already had a published item ``item_id`` (the ids
        ``POST /api/v1/publish`` dedups by, ``cluster/published.py``), the check and the publish as
        one step. The future: the event's offset once published (0: published by an earlier attempt
        whose reply was lost, offset unknown), None for a duplicate; it fails when the event was
        dropped unpublished. Only a bus that keeps those ids has it (Redis: the streams ingest)."""
        raise NotImplementedError("this bus keeps no published ids")

    def publish_sync(self, sync: Sync) -> "asyncio.Future[int | None]":
        """Replace the user's state with ``sync`` (``PUT /api/v1/users/{userId}/portfolio``), in order
        with the events published before and after it, and deliver it to every ``subscribe_syncs``
        handler. The future: the offset the sync took where the bus numbers (a cluster), None where
        the subscriber does (in-process: delivered before the future is returned); it fails when the
        sync was not taken (Redis away)."""
        raise NotImplementedError("this bus carries no syncs")

    def subscribe_syncs(self, handler: SyncHandler) -> Callable[[], None]:
        """Register ``handler`` for syncs; returns a function that unsubscribes it."""
        raise NotImplementedError("this bus carries no syncs")

    @abstractmethod
    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Register ``handler``; returns a function that unsubscribes it."""

    def subscribe_numbered(self, handler: NumberedHandler) -> Callable[[], None]:
        """Like ``subscribe``, with each event's offset where the bus assigns them (else None).
        Offsets of one user are strictly increasing; a subscriber must not renumber them."""
        return self.subscribe(lambda event: handler(event, None))

    async def positions(self, user_ids: list[str]) -> dict[str, str]:
        """Each user's last ``position`` published (users without one left out); {} where the bus
        keeps none."""
        return {}

    async def restore_positions(self, positions: dict[str, str]) -> None:
        """Set each user's position where the bus has none (it lost them: Redis restarted empty),
        from a source that knows those events were published. Never moves one that exists."""

    # True where the bus keeps each user's state with its offset (Redis): a node then loads a
    # user from it (``load_user``) before serving the user, so every node gives the same answer.
    holds_state = False

    async def load_user(self, user_id: str) -> UserSnapshot:
        """The user's state, offset and held history as the bus keeps them (``holds_state``)."""
        raise NotImplementedError("this bus keeps no state")

    def hold_states(self, held: Callable[[str], "tuple[int, PortfolioState] | None"]) -> None:
        """``held(user)``: the state this process holds for the user and its offset (None: none),
        for a bus that keeps states to put back what its store lost. The default keeps none."""

    async def follow(self, user_id: str) -> None:
        """Deliver the user's events to this process from now on; returns once that holds. A bus
        that delivers every user's events (in-process) has nothing to do."""

    async def unfollow(self, user_id: str) -> None:
        """Stop delivering the user's events here (no socket of the user left a while)."""

    async def start(self) -> None:
        """Connect. Returns once published events will be delivered. The default has nothing to do."""

    async def close(self) -> None:
        """Release resources. The default has none."""

    def health(self) -> dict[str, Any] | None:
        """A shared bus's state for admin stats and /metrics: ``connected`` (bool) and its counters
        by outcome (``published``, ``delivered``, ``dropped``, ...). None: nothing shared to report
        (an in-process bus can't be down)."""
        return None
