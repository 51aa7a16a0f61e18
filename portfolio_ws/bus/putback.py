"""The Redis bus puts back a user's state that Redis lost (restarted empty): Redis then numbers the
user's events afresh (from the publish time, so offsets never go down) and its state holds only
what was published since (``RESTORE_LUA``'s mark), while a node that followed the user throughout
holds the whole state. Such a node sees the jump in offsets, and writes its state back at the very
offset Redis is at (``bus/script.py`` ``RESTORE_LUA``): a node that loads the user afterwards - one
that never served it, or one started later - gets the same snapshot as the nodes that kept it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import redis.asyncio as aioredis
import ujson
from redis.exceptions import RedisError

from ..core.codec import to_dict
from ..core.portfolio import PortfolioState
from .keys import BusKeys
from .script import RESTORE_LUA
from .state import state_args, state_events

log = logging.getLogger("portfolio_ws.bus.redis")


class PutBack(BusKeys):
    _last: dict[str, int]
    _tasks: list["asyncio.Task[None]"]
    _closing: bool
    state_keep: str
    counters: Any

    def _init_put_back(self, redis: aioredis.Redis) -> None:
        self._restore_script = redis.register_script(RESTORE_LUA)
        # The states this node holds (``hold_states``); users whose state Redis may have lost, tried
        # at each of their events until Redis says (``_restoring``), and those with a try in flight.
        self._held_state: Callable[[str], tuple[int, PortfolioState] | None] = lambda user_id: None
        self._restoring: set[str] = set()
        self._putting: set[str] = set()

    def hold_states(self, held: Callable[[str], tuple[int, PortfolioState] | None]) -> None:
        """``held(user)``: the state this node holds for the user and its offset (None: none), so
        the bus can put it back in Redis when Redis lost it (``_put_back``)."""
        self._held_state = held

    def put_back_soon(self, user_id: str) -> None:
        """Try putting back the user's state (its offsets jumped, or a try said "later")."""
        if user_id in self._putting or self._closing:
            return
        self._putting.add(user_id)
        task = asyncio.ensure_future(self._put_back(user_id))
        self._tasks.append(task)
        task.add_done_callback(lambda done: self._tasks.remove(done) if done in self._tasks else None)

    async def _put_back(self, user_id: str) -> None:
        """After a jump in the user's offsets (Redis restarted empty numbers afresh, from the
        publish time): write the state this node holds back to Redis, if Redis is at the same offset
        and holds only what was published since (``RESTORE_LUA``), so a node that loads the user
        now gets the whole state, not the events since the restart. Tried again at the user's next
        event while Redis is at another offset (events on their way here)."""
        try:
            held = self._held_state(user_id)
            if held is None or held[0] != self._last.get(user_id):
                self._restoring.discard(user_id)  # nothing whole held here: another node does it
                return
            written = await self._restore(user_id, *held)
        finally:
            self._putting.discard(user_id)
        if written != -1:
            self._restoring.discard(user_id)
        if written == 1:
            self.counters["restored"] += 1

    async def _restore(self, user_id: str, seq: int, state: PortfolioState) -> int:
        events = state_events(state)
        args: list[Any] = [str(seq), self.state_keep, str(len(events))]
        for event in events:
            args += [ujson.dumps(to_dict(event), ensure_ascii=False), *state_args(event)]
        try:
            return int(await self._restore_script(  # type: ignore[misc]
                keys=[self.seq_key(user_id), self.state_key(user_id), self.trades_key(user_id)], args=args))
        except (RedisError, OSError) as exc:
            log.warning("redis bus: could not put back a user's state (%s); tried again at its next event", exc)
            return -1
