"""Where a simulated market stands, so that a new cluster feed leader continues it (issue 14).

Rule 1: sans-I/O. Records go in and out as bytes; the feed (``feed.py``) stores them through the
``FeedState`` it is given, and reads users' positions from the bus.

A ``Market`` is what makes the event stream: its id (the epoch of the events' positions), a
fingerprint of the settings that shape it, the real and simulated instants it started at, and its
users in order. The simulation is deterministic given those, so the n-th event of a market is the
same event on every node: a new leader rebuilds it instead of starting another day (which repeated
trades and sent orders back to ``new``).

A ``Checkpoint`` is the simulation itself after ``published`` events had been handed to the bus,
with each user's last position up to there. A new leader starts from the newest checkpoint whose
events all reached the bus (each user's position in the bus at or past the checkpoint's), else from
the market's start, and publishes from there on; the bus refuses any event at or below its user's
position, so what the dead leader had published goes out once, and what it had not goes out now.
``Positions`` is the bus's positions as the leader last read them, kept as a record of its own:
Redis restarted empty loses them with everything else, and every node's copy of the records
(feeds/leader.py) brings them back, so the checkpoint is still known covered and the bus refuses
again what it had already taken.

A checkpoint is JSON (``snapshot.py`` for the simulation in it) with a format name and a version,
never a pickle: whoever can write to Redis must not be able to run code on the leader through it. A
record that is not a checkpoint of this version is refused (``ValueError``); the leader then logs it
and takes the other slot or the market's start (``resume.py``), which is slower and never wrong.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections import deque
from dataclasses import dataclass, field

import ujson

from portfolio_ws.settings import SimulatorSettings

from . import snapshot
from .engine import Simulation, TimedEvent

FORMAT = "portfolio-ws/simulator-checkpoint"
VERSION = 1  # bump on any change to what a checkpoint holds: an older record is then refused

# Settings that do not change which events happen or when: pacing and load-test pregeneration.
_NOT_SHAPING = ("step_ms", "pregenerate_seconds", "users")


def fingerprint(settings: SimulatorSettings) -> str:
    shaping = {k: v for k, v in dataclasses.asdict(settings).items() if k not in _NOT_SHAPING}
    return json.dumps(shaping, sort_keys=True, default=str)


@dataclass(frozen=True)
class Market:
    market_id: str
    fingerprint: str
    sim_start: float
    real_start: float
    wall_clock: bool
    users: tuple[str, ...]
    # Users who joined later: (events of the market before the join, simulated time, user), in order.
    # The joining leader ran the market fully up to that time, then added the user; a successor
    # re-running the market does the same there.
    joins: tuple[tuple[int, float, str], ...] = ()

    @classmethod
    def new(cls, settings: SimulatorSettings, sim_start: float, real_start: float, wall_clock: bool,
            users: list[str]) -> Market:
        return cls(uuid.uuid4().hex[:16], fingerprint(settings), sim_start, real_start, wall_clock, tuple(users))

    def encode(self) -> bytes:
        return json.dumps({"id": self.market_id, "fingerprint": self.fingerprint, "simStart": self.sim_start,
                           "realStart": self.real_start, "wallClock": self.wall_clock,
                           "users": list(self.users), "joins": [list(j) for j in self.joins]}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Market:
        """Raises ``ValueError`` on anything that is not a market record."""
        try:
            d = json.loads(raw)
            users = d["users"]
            if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
                raise ValueError("users")
            joins = tuple((int(n), float(at), str(user)) for n, at, user in d.get("joins", []))
            return cls(str(d["id"]), str(d["fingerprint"]), float(d["simStart"]), float(d["realStart"]),
                       bool(d["wallClock"]), tuple(users), joins)
        except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a market record: {exc}") from None

    @property
    def all_users(self) -> set[str]:
        return {*self.users, *(user for _, _, user in self.joins)}

    def position(self, ordinal: int) -> str:
        """The bus position of the market's ``ordinal``-th event."""
        return f"{self.market_id}:{ordinal}"

    def ordinal(self, position: str | None) -> int:
        """How far a user's events went, from its bus position (0 if none, or another market's)."""
        if not position:
            return 0
        market_id, _, n = position.rpartition(":")
        return int(n) if market_id == self.market_id and n.isdigit() else 0


@dataclass(frozen=True)
class Positions:
    """How far each user's events of a market were known to be on the bus (its positions there, read
    back), kept as a feed record beside the checkpoints: every node holds a copy, so after Redis
    restarted empty a new leader can still tell that a checkpoint is covered, and put the positions
    back before it publishes (else the bus would take every event of a user again)."""

    market_id: str
    last: dict[str, int]  # user -> ordinal of its last event the bus had

    def merged(self, market: Market, positions: dict[str, str]) -> Positions:
        """These and the bus's own ``positions`` of ``market``, the furthest of each user."""
        last = dict(self.last) if self.market_id == market.market_id else {}
        for user, position in positions.items():
            n = market.ordinal(position)
            if n > last.get(user, 0):
                last[user] = n
        return Positions(market.market_id, last)

    def of(self, market: Market) -> dict[str, str]:
        """As the bus's positions (``"<market>:<n>"``)."""
        return {user: market.position(n) for user, n in self.last.items()} if self.market_id == market.market_id \
            else {}

    def encode(self) -> bytes:
        return ujson.dumps({"market": self.market_id, "last": self.last}).encode()

    @staticmethod
    def decode(raw: bytes) -> Positions:
        """Raises ``ValueError`` on anything that is not a positions record."""
        try:
            d = ujson.loads(raw)
            last = d["last"]
            if not isinstance(last, dict) or not all(
                    isinstance(u, str) and isinstance(n, int) and not isinstance(n, bool) for u, n in last.items()):
                raise ValueError("last")
            return Positions(str(d["market"]), dict(last))
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a positions record: {exc}") from None


@dataclass
class Checkpoint:
    market_id: str
    published: int  # events handed to the bus
    last: dict[str, int]  # user -> ordinal of its last event among them
    sim: Simulation
    ahead: deque[TimedEvent] = field(default_factory=deque)  # pregenerated, not yet published
    ahead_to: float = 0.0

    def covered_by(self, market: Market, positions: dict[str, str]) -> bool:
        """Whether every event up to this checkpoint reached the bus (so none would be lost)."""
        return self.market_id == market.market_id and all(
            market.ordinal(positions.get(user)) >= ordinal for user, ordinal in self.last.items())

    def encode(self) -> bytes:
        return ujson.dumps({
            "format": FORMAT, "version": VERSION, "market": self.market_id, "published": self.published,
            "last": self.last, "sim": snapshot.dump(self.sim), "ahead": snapshot.timed_events(self.ahead),
            "aheadTo": self.ahead_to,
        }, ensure_ascii=False).encode()

    @staticmethod
    def decode(raw: bytes) -> Checkpoint:
        """Raises ``ValueError`` on a record that is not a checkpoint of this ``VERSION``."""
        try:
            d = ujson.loads(raw)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a checkpoint: not JSON ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError("not a checkpoint: no checkpoint format name")
        if d.get("version") != VERSION:
            raise ValueError(f"not a checkpoint of this version: version {repr(d.get('version'))[:40]}, this build "
                             f"reads {VERSION}")
        try:
            last = d["last"]
            if not isinstance(last, dict) or not all(isinstance(n, int) for n in last.values()):
                raise ValueError("last")
            published = d["published"]
            if isinstance(published, bool) or not isinstance(published, int):
                raise ValueError("published")
            return Checkpoint(str(d["market"]), published, dict(last), snapshot.load(d["sim"]),
                              deque(snapshot.read_timed_events(d["ahead"])), float(d["aheadTo"]))
        except Exception as exc:  # whatever a malformed record trips over, it is one kind of refusal
            raise ValueError(f"not a checkpoint: {type(exc).__name__}: {exc}") from None
