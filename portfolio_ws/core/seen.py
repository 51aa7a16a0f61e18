"""Which published item ids each user has had, so a retried publish delivers nothing twice.

A bounded window: the last ``per_user`` ids of each user, each with the offset it was given (a
retry is answered with the first delivery's offset). An id older than the window would be taken
again: a publisher retries within seconds, and 10,000 ids is far more than it has in flight.
Process memory; in a cluster the ids are kept in Redis instead (``cluster.published``).
"""

from __future__ import annotations

from collections import OrderedDict

SEEN_PER_USER = 10_000
_NO_OFFSET = -1


class SeenIds:
    def __init__(self, per_user: int = SEEN_PER_USER) -> None:
        self.per_user = per_user
        self._users: dict[str, OrderedDict[str, int]] = {}

    def seen(self, user_id: str, item_id: str) -> tuple[bool, int | None]:
        """(True, its offset or None) when ``item_id`` was already taken for the user."""
        ids = self._users.get(user_id)
        if ids is None or item_id not in ids:
            return False, None
        offset = ids[item_id]
        return True, None if offset == _NO_OFFSET else offset

    def add(self, user_id: str, item_id: str, offset: int | None) -> None:
        ids = self._users.setdefault(user_id, OrderedDict())
        ids[item_id] = _NO_OFFSET if offset is None else offset
        if len(ids) > self.per_user:
            ids.popitem(last=False)
