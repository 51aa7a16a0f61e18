"""What the streaming core hands its adapter to carry out: a frame to write to some connections, or a
connection to close. The adapter drains these from ``StreamCore.data_to_send()`` and acts on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..constants import Close


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One serialised frame for one or more connections (all of the same user)."""

    frame: str
    connections: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Closing:
    connection: int
    close: Close


Output = Union[Outgoing, Closing]
