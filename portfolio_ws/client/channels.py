"""The channels a client subscribes to: names checked and put in the canonical order before anything
is sent, and a full REST snapshot cut down to the subscribed ones (while polling). No I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from .. import constants as c
from ..errors import UsageError
from .events import Snapshot


def checked(channels: Iterable[str]) -> list[str]:
    """Channels in the canonical order; an unknown name is a ``UsageError`` (the server would refuse it)."""
    given = list(channels) if not isinstance(channels, str) else [channels]
    unknown = [ch for ch in given if ch not in c.CHANNELS]
    if unknown:
        raise UsageError(f"unknown channel {unknown[0]!r}; channels are {', '.join(c.CHANNELS)}")
    return [ch for ch in c.CHANNELS if ch in given]


def only(snapshot: Snapshot, channels: frozenset[str]) -> Snapshot:
    """A full REST snapshot cut down to the subscribed channels."""
    keep = snapshot.channels & channels
    return replace(snapshot, channels=keep,
                   positions=snapshot.positions if c.POSITIONS in keep else (),
                   orders=snapshot.orders if c.ORDERS in keep else (),
                   account=snapshot.account if c.ACCOUNT in keep else None,
                   trades=snapshot.trades if c.TRADES in keep else ())
