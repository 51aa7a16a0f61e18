"""Who may hold a connection before it is an authenticated WebSocket: the counts per client address
and in total, and which connection gives way when a cap is reached. No sockets, no clock of its own
(``now`` is passed in), no Tornado: ``server/accept.py`` feeds it and acts on its answers.

Rule 1: a connection is *pending* from its accept until it closes or is upgraded to a WebSocket.
Rule 2: a pending connection is *waiting* while no request of it is in progress (just accepted, or
kept alive between requests), *busy* from its request head to the end of that request.
Rule 3: at a cap, the oldest *stalled* connection (of the address, else of all) is given up for the
new one, so an attacker's idle or half-sent connections can't keep a real user out. When none is
stalled: at the address cap the new one is refused only if that many of the address's connections
are *busy* (requests in progress: slow bodies), else it is let in - the rest are connections the
server hasn't read yet, a reconnect storm from behind one address; at the total cap the caller
stops accepting until one ends. Busy ones end by themselves (body timeout).
Rule 4: *stalled* = waiting for at least ``STALLED_AFTER`` seconds with nothing unread in the kernel
(the caller's ``quiet``). A connection whose request the server simply hasn't read yet - a reconnect
storm's - is never given up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Hashable, Iterable, TypeVar

K = TypeVar("K", bound=Hashable)

STALLED_AFTER = 2.0  # a client sends its request as soon as it connects: 2 s of silence is not that
SCAN = 256  # the oldest connections looked at per admission, so a full cap costs little


@dataclass
class _Entry:
    address: str
    since: float  # when it began waiting (accepted, or its previous request ended)
    busy: bool = False


@dataclass(frozen=True)
class Admission(Generic[K]):
    admitted: bool
    evict: K | None = None  # close this one to make room (only when admitted)
    cap: str = ""  # "address" or "total": which cap was reached, if any


class PendingGate(Generic[K]):
    def __init__(self, per_address: int, total: int) -> None:
        self.per_address = per_address
        self.total = total
        self._entries: dict[K, _Entry] = {}  # insertion order = accept order
        self._by_address: dict[str, dict[K, None]] = {}
        self._busy: dict[str, int] = {}  # busy connections per address
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._entries)

    def count(self, address: str) -> int:
        return len(self._by_address.get(address, ()))

    def admit(self, key: K, address: str, now: float, *, per_address: bool = True,
              quiet: Callable[[K], bool] = lambda key: True) -> Admission[K]:
        """A new connection from ``address``. When the answer names ``evict``, the caller closes
        that connection (and calls ``release`` for it); when not admitted, it closes the new one.
        ``per_address=False``: only the total applies (a trusted proxy speaks for many clients).
        ``quiet(key)``: nothing of that connection is waiting unread in the kernel."""
        evict: K | None = None
        cap = ""
        mine = self._by_address.get(address, {})
        if per_address and len(mine) >= self.per_address:
            cap, evict = "address", self._oldest_stalled(mine, now, quiet)
            if evict is None and self._busy.get(address, 0) < self.per_address:
                cap = ""  # none stalled, and not that many busy: what's over is simply unread yet
        if not cap and len(self._entries) >= self.total:
            cap, evict = "total", self._oldest_stalled(self._entries, now, quiet)
        if cap and evict is None:
            self.refused += 1
            return Admission(False, cap=cap)
        if evict is not None:
            self.release(evict)
            self.evicted += 1
        self._entries[key] = _Entry(address, now)
        self._by_address.setdefault(address, {})[key] = None
        return Admission(True, evict, cap)

    def force(self, key: K, address: str, now: float) -> None:
        """Count a connection the caller keeps although ``admit`` refused it (then it stops accepting
        until the count is below the total again)."""
        self._entries[key] = _Entry(address, now)
        self._by_address.setdefault(address, {})[key] = None

    def busy(self, key: K) -> None:
        """Its request head arrived."""
        entry = self._entries.get(key)
        if entry is not None and not entry.busy:
            entry.busy = True
            self._busy[entry.address] = self._busy.get(entry.address, 0) + 1

    def waiting(self, key: K, now: float) -> None:
        """It waits for its next request (the previous one ended)."""
        entry = self._entries.get(key)
        if entry is not None and entry.busy:
            entry.busy, entry.since = False, now
            self._unbusy(entry.address)

    def _unbusy(self, address: str) -> None:
        left = self._busy.get(address, 0) - 1
        if left > 0:
            self._busy[address] = left
        else:
            self._busy.pop(address, None)

    def release(self, key: K) -> None:
        """It closed or became a WebSocket."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        if entry.busy:
            self._unbusy(entry.address)
        mine = self._by_address.get(entry.address)
        if mine is not None:
            mine.pop(key, None)
            if not mine:
                del self._by_address[entry.address]

    def waiting_since_before(self, moment: float) -> list[K]:
        """Connections waiting since before ``moment`` (candidates for the idle timeout)."""
        return [k for k, e in self._entries.items() if not e.busy and e.since < moment]

    def _oldest_stalled(self, keys: Iterable[K], now: float, quiet: Callable[[K], bool]) -> K | None:
        for looked, key in enumerate(keys):
            if looked >= SCAN:
                break
            entry = self._entries[key]
            if not entry.busy and now - entry.since >= STALLED_AFTER and quiet(key):
                return key
        return None
