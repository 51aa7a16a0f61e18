"""The Redis bus puts back a user's state that Redis lost (restarted empty, or the user's keys
expired while a node still served the user): Redis then numbers the user's events afresh (from the
publish time, so offsets never go down) and holds only what was published since, while a node that
followed the user throughout holds the whole state. Such a node writes its state back as a sync at a
new offset (``bus/script.py`` ``RESTORE_LUA``), so every node replaces its state with it (one that
loaded the user meanwhile held only the events since) and every socket of the user gets a snapshot;
a node that loads the user afterwards - one that never served it, or one started later - gets the
same snapshot as the nodes that kept it.

When: at the first event after the loss (the node sees the jump in offsets, ``_repair``), or at once
when the node's subscription comes back and the user's offset is gone (``_catch_up``), so a user
with no events afterwards is put back too. Several nodes may try: the first one's put-back stands,
unless another held a further offset before the loss, whose state then replaces it (a put-back
names the offset its state is at before the loss, ``Sync.put_back_from``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import redis.asyncio as aioredis
import ujson
from redis.exceptions import RedisError

from ..core.codec import sync_to_dict, to_dict
from ..core.events import Event
from ..core.portfolio import PortfolioState
from ..core.sync import Sync
from .keys import BusKeys
from .script import RESTORE_LUA
from .state import state_args, state_events

log = logging.getLogger("portfolio_ws.bus.redis")

FAILED = -2                      # ``_restore``: Redis did not answer
RETRY_FIRST, RETRY_MAX = 0.5, 30.0  # seconds before a failed put-back is tried again, doubling


class PutBack(BusKeys):
    _last: dict[str, int]
    _tasks: list["asyncio.Task[None]"]
    _closing: bool
    state_keep: str
    counters: Any
    max_events: int
    max_age: float
    clock: Callable[[], float]

    def _init_put_back(self, redis: aioredis.Redis) -> None:
        self._restore_script = redis.register_script(RESTORE_LUA)
        # The states this node holds (``hold_states``); users whose state Redis may have lost, with
        # the offset this node held before the jump, tried at each of their events until Redis says
        # (``_restoring``); and those with a try in flight.
        self._held_state: Callable[[str], tuple[int, PortfolioState] | None] = lambda user_id: None
        self._restoring: dict[str, int] = {}
        self._putting: set[str] = set()
        self._put_back_tries: dict[str, int] = {}  # user -> put-backs Redis failed in a row

    def hold_states(self, held: Callable[[str], tuple[int, PortfolioState] | None]) -> None:
        """``held(user)``: the state this node holds for the user and its offset (None: none), so
        the bus can put it back in Redis when Redis lost it (``_put_back``)."""
        self._held_state = held

    def may_have_lost(self, user_id: str, held_before: int) -> None:
        """Redis may have lost the user (its offsets jumped after ``held_before``, or its offset is
        gone): the state held here is put back at the user's next delivery, or now with ``soon``."""
        if held_before > 0:
            self._restoring.setdefault(user_id, held_before)

    def put_back_soon(self, user_id: str) -> None:
        """Try putting back the user's state (its offsets jumped, or a try said "later")."""
        if user_id in self._putting or self._closing or user_id not in self._restoring:
            return
        self._putting.add(user_id)
        self._spawn(self._put_back(user_id))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.append(task)
        task.add_done_callback(lambda done: self._tasks.remove(done) if done in self._tasks else None)

    async def _put_back(self, user_id: str) -> None:
        """Write the state this node holds back to Redis as a put-back (``RESTORE_LUA``), if Redis
        is at the node's offset and has lost the user; tried again at the user's next event while
        Redis is at another offset (events on their way here)."""
        try:
            held, origin = self._held_state(user_id), self._restoring.get(user_id)
            if held is None or origin is None or held[0] != self._last.get(user_id) or not state_events(held[1]):
                self._restoring.pop(user_id, None)  # nothing whole held here: another node does it
                return
            written = await self._restore(user_id, held[0], state_events(held[1]), origin)
        finally:
            self._putting.discard(user_id)
        if written == FAILED:  # Redis not answering (e.g. a connection the restart broke): again soon,
            tries = self._put_back_tries[user_id] = self._put_back_tries.get(user_id, 0) + 1  # not at an event
            if not self._closing:                    # that may never come (a user with no events since)
                asyncio.get_running_loop().call_later(min(RETRY_FIRST * 2 ** (tries - 1), RETRY_MAX),
                                                      self.put_back_soon, user_id)
            return
        self._put_back_tries.pop(user_id, None)
        if written != -1:
            self._restoring.pop(user_id, None)

    def _before_sync(self, sync: Sync) -> Callable[[int], None] | None:
        """A sync is about to replace the user's state here: the node's own put-back is over (the
        sync's state is whole). If the sync is another node's put-back from an offset before this
        node's, this node's state is further: it is put back over it, at the sync's offset (the
        callable returned, called once the sync is delivered)."""
        mine = self._restoring.pop(sync.user_id, None)
        if mine is None or sync.put_back_from is None or sync.put_back_from >= mine:
            return None
        held = self._held_state(sync.user_id)
        if held is None or held[0] != self._last.get(sync.user_id):
            return None
        events = state_events(held[1])  # taken now: the sync replaces the state
        return lambda seq: self._spawn(self._restore(sync.user_id, seq, events, mine))

    async def _restore(self, user_id: str, seq: int, events: list[Event], origin: int) -> int:
        """Run ``RESTORE_LUA``; its answer, or ``FAILED`` when Redis did not answer."""
        sync = Sync(user_id, tuple(events), False, origin)
        args: list[Any] = [str(seq), str(origin), str(int(self.clock() * 1000)), self.max_events,
                           max(1, int(self.max_age)), self.user_channel(user_id), repr(self.clock()),
                           self.state_keep, ujson.dumps(sync_to_dict(sync), ensure_ascii=False), str(len(events))]
        for event in events:
            args += [ujson.dumps(to_dict(event), ensure_ascii=False), *state_args(event)]
        try:
            written = int(await self._restore_script(  # type: ignore[misc]
                keys=[self.seq_key(user_id), self.recovery_key(user_id), self.state_key(user_id),
                      self.trades_key(user_id)], args=args))
        except (RedisError, OSError) as exc:
            log.warning("redis bus: could not put back a user's state (%s); tried again shortly", exc)
            return FAILED
        if written > 0:
            self.counters["restored"] += 1
            log.info("redis bus: put back a user's state Redis had lost, at offset %d", written)
        return written
