"""The checks a published item passes before it is published, over HTTP or from a Redis stream: the
events' schema (``core.ingest.parse_item``), a user we know, and the feed guard's check. A sync's
body (``PUT /api/v1/users/{userId}/portfolio``) passes the same, field by field (``check_sync``)."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from ..core.ingest import Item, ItemError, parse_item
from ..core.sync import Sync, parse_sync
from ..feeds.guard import event_problem


class Users(Protocol):
    async def get_async(self, user_id: str) -> object | None:
        """The user, or None when there is no such user."""


class KnownUsers:
    """A user store's answers, a user found kept for ``keep_seconds`` (a stream of thousands of
    events a second asks about the same users over and over; a user removed is refused again
    at most that long after)."""

    def __init__(self, users: Users, clock: Callable[[], float], keep_seconds: float = 60.0) -> None:
        self.users, self.clock, self.keep = users, clock, keep_seconds
        self._found: dict[str, float] = {}  # user -> when it was found

    async def get_async(self, user_id: str) -> object | None:
        now = self.clock()
        if now - self._found.get(user_id, -self.keep) < self.keep:
            return user_id
        user = await self.users.get_async(user_id)
        if user is not None:
            if len(self._found) >= 100_000:
                self._found.clear()
            self._found[user_id] = now
        return user


async def check_items(items: list[Any], users: Users, external_users: bool) -> list[Item | ItemError]:
    """Each item as an ``Item`` to publish, or the ``ItemError`` naming what is wrong with it.
    ``external_users``: users come from the platform (external sessions), not our database: the
    publisher vouches for them. Raises what the user store raises (the caller retries)."""
    parsed = [parse_item(item) for item in items]
    known = await known_users({p.user_id for p in parsed if isinstance(p, Item)}, users, external_users)
    checked: list[Item | ItemError] = []
    for item in parsed:
        if isinstance(item, Item) and item.user_id not in known:
            item = ItemError("userId", "no such user")
        if isinstance(item, Item):
            problem = event_problem(item.event)  # the feed guard's check: nothing unsound passes
            if problem is not None:
                item = ItemError("data", problem)
        checked.append(item)
    return checked


async def known_users(user_ids: set[str], users: Users, external_users: bool) -> set[str]:
    if external_users:
        return user_ids
    known = set()
    for user_id in user_ids:
        if await users.get_async(user_id) is not None:
            known.add(user_id)
    return known


def check_sync(user_id: str, body: Any) -> Sync | list[ItemError]:
    """The sync's body (``core.sync.parse_sync``), each event passing the feed guard's check too."""
    return parse_sync(user_id, body, event_problem)
