"""The trade-events stream's resume point and de-duplication: sans-I/O, one raw SSE ``data`` text in,
the event (or why it is refused) out.

Rule 1: the cursor is the newest ``event_id`` read. After a drop the reader reconnects with
``since_id`` = the cursor, so nothing between is lost; whatever Alpaca sends again (the event at the
cursor itself, events still queued for the loop when the connection dropped) is dropped here by id.
Rule 2: ids are compared as Alpaca orders them: integers on the legacy v1 endpoint, ULIDs (text that
sorts in time order) on v2. A cursor never moves back.
Rule 3: a malformed event raises ``MalformedEvent`` naming what is wrong and changes nothing; its
id, when it has one, still counts as read (a poison event is not fetched again on every resume).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

from ...errors import PortfolioWsError

REMEMBER = 10_000


class MalformedEvent(PortfolioWsError):
    """A trade event that can't be used; the text says why (never the whole payload)."""


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One trade event of the broker stream: the account it belongs to and the ``trade_updates``-
    shaped payload (``event``, ``order``, ``execution_id``, ``price``, ``qty``, ...)."""

    event_id: int | str
    account_id: str
    data: Mapping[str, Any]


class Cursor:
    """What the events stream has read: the resume point and the ids already seen (bounded)."""

    def __init__(self, remember: int = REMEMBER) -> None:
        self.last_id: int | str | None = None
        self.duplicates = 0
        self._seen: OrderedDict[int | str, None] = OrderedDict()
        self._remember = remember
        self._floor: int | str | None = None  # the kept cursor resumed from: it and all before it were read

    def resume(self, last_id: object) -> None:
        """Start from ``last_id`` (a cursor another feed kept): ``MalformedEvent`` when it is not an id."""
        if isinstance(last_id, bool) or not isinstance(last_id, (int, str)) or last_id == "":
            raise MalformedEvent(f"cursor: expected an integer or a ULID, got {type(last_id).__name__}")
        if self.last_id is None:
            self.last_id = last_id
            self._floor = last_id

    def read(self, text: str) -> TradeEvent | None:
        """The event ``text`` carries, or None when it was seen already. ``MalformedEvent`` when it
        is not a trade event (not JSON, no object, no ``account_id`` or ``order``)."""
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested past what json can read
            raise MalformedEvent(f"not JSON ({len(text)} characters)") from None
        if not isinstance(raw, dict):
            raise MalformedEvent(f"expected an object, got {type(raw).__name__}")
        event_id = raw.get("event_id")
        if isinstance(event_id, bool) or not isinstance(event_id, (int, str)) or event_id == "":
            raise MalformedEvent(f"event_id: expected an integer or a ULID, got {type(event_id).__name__}")
        if event_id in self._seen or self._read_before(event_id):
            self.duplicates += 1
            return None
        self._remember_id(event_id)
        account_id = raw.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise MalformedEvent(f"event {event_id}: account_id missing")
        if not isinstance(raw.get("order"), dict):
            raise MalformedEvent(f"event {event_id}: order missing")
        return TradeEvent(event_id, account_id, raw)

    def _read_before(self, event_id: int | str) -> bool:
        """Whether ``event_id`` is at or before the kept cursor this stream resumed from (Alpaca
        replays from ``since_id`` inclusive; the previous runner's seen ids are not kept)."""
        floor = self._floor
        return floor is not None and type(floor) is type(event_id) and event_id <= floor  # type: ignore[operator]

    def _remember_id(self, event_id: int | str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        last = self.last_id
        if last is None or type(last) is not type(event_id) or event_id > last:  # type: ignore[operator]
            self.last_id = event_id
