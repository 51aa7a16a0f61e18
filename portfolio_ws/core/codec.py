"""Events (and syncs, core/sync.py) to plain JSON-safe dicts and back, for carrying them between
processes (the Redis bus, the Redis recovery buffer). Not the wire format clients see: that is ``core.wire``.

Rule: the round trip is exact. ``Decimal`` travels as its ``str`` (so ``1.50`` stays ``1.50``,
exponent and all), ``datetime`` as ISO 8601 with its offset and microseconds; ``None`` stays None.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import InvalidEvent
from .events import EVENT_TYPES, SCHEMA, Event
from .sync import Sync

_BY_TYPE: dict[str, type] = {cls.TYPE: cls for cls in EVENT_TYPES}  # type: ignore[attr-defined]
# Per event class: field name -> Decimal, datetime or str, from the events' one schema table.
_KINDS: dict[type, dict[str, type]] = {cls: {f.name: f.kind for f in table} for cls, table in SCHEMA.items()}


def to_dict(event: Event) -> dict[str, Any]:
    """``{"event": <wire type>, <field>: <str or None>, ...}`` (not "type": orders have a ``type`` field)."""
    out: dict[str, Any] = {"event": event.TYPE}
    for name, kind in _KINDS[type(event)].items():
        value = getattr(event, name)
        if value is None:
            out[name] = None
        elif kind is datetime:
            out[name] = value.isoformat()
        else:
            out[name] = str(value)
    return out


def from_dict(data: dict[str, Any]) -> Event:
    """The event ``to_dict`` made. Raises ``InvalidEvent`` for anything else."""
    try:
        cls = _BY_TYPE[data["event"]]
        values: dict[str, Any] = {}
        for name, kind in _KINDS[cls].items():
            value = data.get(name)
            if value is None:
                values[name] = None
            elif kind is Decimal:
                values[name] = Decimal(value)
            elif kind is datetime:
                values[name] = datetime.fromisoformat(value)
            else:
                values[name] = value
        event: Event = cls(**values)
        return event
    except InvalidEvent:
        raise
    except Exception as exc:  # unknown type, bad number, bad date: all one kind of garbage
        raise InvalidEvent(f"not an encoded event: {exc!r}") from None


def sync_to_dict(sync: Sync) -> dict[str, Any]:
    """``{"sync": <user id>, "keepTrades": bool, "events": [to_dict(event), ...]}``, and ``"putBack":
    <offset>`` for a node's put-back (bus/putback.py)."""
    data: dict[str, Any] = {"sync": sync.user_id, "keepTrades": sync.keep_trades, "events": [to_dict(e) for e in sync.events]}
    if sync.put_back_from is not None:
        data["putBack"] = sync.put_back_from
    return data


def decode(data: dict[str, Any]) -> Event | Sync:
    """The event ``to_dict`` or the sync ``sync_to_dict`` made. Raises ``InvalidEvent`` for anything else."""
    if not isinstance(data, dict) or "sync" not in data:
        return from_dict(data)
    user_id, events, origin = data.get("sync"), data.get("events"), data.get("putBack")
    if not isinstance(user_id, str) or not isinstance(events, list) or not isinstance(data.get("keepTrades"), bool) \
            or not (origin is None or type(origin) is int):
        raise InvalidEvent("not an encoded sync")
    decoded = tuple(from_dict(e) for e in events)
    if any(event.user_id != user_id for event in decoded):
        raise InvalidEvent("an encoded sync holds another user's event")
    return Sync(user_id, decoded, data["keepTrades"], origin)
