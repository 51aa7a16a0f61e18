"""Connection slots: the per-user and total connection limits across every node of a cluster.

One process needs nothing here: its hub counts its own sockets (``core/hub.py``), and ``LocalSlots``
admits everything. In a cluster (``cluster.redis_url``) ``redis.RedisSlots`` holds one leased
slot per open socket in Redis, taken atomically against both limits, renewed by the node that holds
it, and freed within ``cluster.lease_ttl_seconds`` when that node dies without releasing it.

Rules every implementation keeps:
- ``acquire`` is asked after authentication and before the core admits the socket; a refusal is the
  same close the hub would give (``1008`` per-user limit, ``1013`` capacity);
- every acquired slot is released exactly once (``release``), when the socket closes or the core
  refuses it for a reason of its own;
- a store that can't answer admits (the node's own limits still hold) rather than locking everyone out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..constants import Close


class ConnectionSlots(ABC):
    @abstractmethod
    async def acquire(self, user_id: str) -> tuple[str | None, Close | None]:
        """Take a slot for a new socket of ``user_id``: (slot id to release later, None) when admitted
        (slot id None if nothing was taken), or (None, the close to refuse it with)."""

    @abstractmethod
    async def release(self, slot: str) -> None:
        """Give back a slot from ``acquire``."""

    async def start(self) -> None:
        """Begin renewing held slots (a store with leases)."""

    async def close(self) -> None:
        """Release every held slot and stop."""


class LocalSlots(ConnectionSlots):
    """One process: the hub enforces both limits by itself."""

    async def acquire(self, user_id: str) -> tuple[str | None, Close | None]:
        return None, None

    async def release(self, slot: str) -> None:
        return None
