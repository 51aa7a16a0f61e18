"""RedisBus put-backs after Redis lost a user (bus/putback.py, RESTORE_LUA): two nodes holding
different states both put back; the one that held the further offset before the loss wins, at a new
offset, and no offset is used twice."""

from __future__ import annotations

import asyncio
import asyncio
from typing import Any

from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.bus.state import state_events
from portfolio_ws.core.portfolio import PortfolioState
from tests.builders import later, position, trade
from tests.buses import bus_until
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

ALL = ("positions", "orders", "account", "trades")


def state_of(*events: Any) -> PortfolioState:
    state = PortfolioState()
    for event in events:
        state.apply(event)
    return state


async def test_the_further_state_wins_when_two_nodes_put_back(io_loop: Any, redis_server: RedisServer) -> None:
    """Node b missed alice's last two events before Redis restarted empty (it held offset 98, a 100):
    b puts back first; a, receiving b's put-back, puts its own back over it at the next offset."""
    short = state_of(position("alice", "AAPL", qty="100", at=later(1)), trade("alice", "t1", at=later(2)))
    whole = state_of(position("alice", "AAPL", qty="100", at=later(1)), trade("alice", "t1", at=later(2)),
                     trade("alice", "t2", at=later(3)), position("alice", "MSFT", qty="5", at=later(4)))
    a, b, c = RedisBus(redis_server.url, node_id="a"), RedisBus(redis_server.url, node_id="b"), \
        RedisBus(redis_server.url, node_id="c")
    held = {"a": (100, whole)}
    a.hold_states(lambda user: held.get("a"))
    a.subscribe_syncs(lambda sync, seq: held.__setitem__("a", (seq, sync.state(held["a"][1]))))
    for bus in (a, b, c):
        await bus.start()
    try:
        await a.follow("alice")
        a._last["alice"] = 100  # what a had delivered before the loss
        a.may_have_lost("alice", 100)
        first = await b._restore("alice", 98, state_events(short), 98)  # b: its offset is gone, it puts back
        assert first > 100
        await bus_until(a, lambda: a.counters["restored"] == 1)  # a's state over b's, at the next offset
        snapshot = await c.load_user("alice")
        assert snapshot.seq == first + 1
        assert snapshot.state.snapshot(ALL) == whole.snapshot(ALL)
        assert await b._restore("alice", first + 1, state_events(short), 98) == 0  # never back to the shorter
        assert (await c.load_user("alice")).state.snapshot(ALL) == whole.snapshot(ALL)
    finally:
        for bus in (a, b, c):
            await bus.close()


async def test_a_node_that_loaded_the_user_after_the_loss_never_puts_its_partial_state_back(
        io_loop: Any, redis_server: RedisServer) -> None:
    """Node c took alice in after Redis lost her (from the event since alone) and then saw a jump in
    her offsets (a missed event, a reconnect): it must not put that partial state back, neither
    before node a, which held her whole state, puts back, nor over a's put-back when it arrives."""
    whole = state_of(position("alice", "AAPL", qty="100", at=later(1)), trade("alice", "t1", at=later(2)))
    since = trade("alice", "t2", at=later(3))
    a, c = RedisBus(redis_server.url, node_id="a"), RedisBus(redis_server.url, node_id="c")
    partial = state_of(since)
    held = {"c": (0, partial)}
    c.hold_states(lambda user: held.get("c"))
    c.subscribe_numbered(lambda event, seq: held.__setitem__("c", (seq or 0, partial)))
    c.subscribe_syncs(lambda sync, seq: held.__setitem__("c", (seq or 0, sync.state(held["c"][1]))))
    for bus in (a, c):
        await bus.start()
    try:
        await c.follow("alice")
        c.publish(since)  # the first event after the loss: numbered afresh
        await bus_until(c, lambda: c.counters["delivered"] == 1)
        fresh = held["c"][0]
        assert await c._restore("alice", fresh, state_events(partial), fresh) == 0  # before a's put-back
        c.may_have_lost("alice", fresh)  # c would put back again when a's put-back reaches it
        whole.apply(since)
        put_back = await a._restore("alice", fresh, state_events(whole), 100)  # a held offset 100 before
        assert put_back == fresh + 1
        await bus_until(c, lambda: c.counters["delivered"] == 2)
        await asyncio.gather(*c._tasks[2:])  # c's try over a's put-back, if it made one
        assert await c._restore("alice", put_back, state_events(partial), fresh) == 0
        snapshot = await a.load_user("alice")
        assert (snapshot.seq, snapshot.state.snapshot(ALL)) == (put_back, whole.snapshot(ALL))
        assert c.counters["restored"] == 0 and held["c"][1].snapshot(ALL) == whole.snapshot(ALL)
    finally:
        for bus in (a, c):
            await bus.close()


async def test_a_put_back_redis_did_not_answer_is_tried_again_without_waiting_for_an_event(
        io_loop: Any, redis_server: RedisServer) -> None:
    """Redis restarted empty and no event since: the node's first put-back went over a connection the
    restart had broken ("Connection closed by server") and waited for the user's next event, which
    never came (the second trial: her state never back, another node served her an empty portfolio)."""
    whole = state_of(position("alice", "AAPL", qty="100", at=later(1)), trade("alice", "t1", at=later(2)))
    a, c = RedisBus(redis_server.url, node_id="a"), RedisBus(redis_server.url, node_id="c")
    a.hold_states(lambda user: (100, whole))
    for bus in (a, c):
        await bus.start()
    try:
        await a.follow("alice")
        a._last["alice"] = 100
        await asyncio.gather(*(a._redis.ping() for _ in range(3)))  # pooled connections the restart breaks
        redis_server.restart()
        await bus_until(a, lambda: a.counters["restored"] == 1)
        snapshot = await c.load_user("alice")
        assert snapshot.state.snapshot(ALL) == whole.snapshot(ALL)
    finally:
        for bus in (a, c):
            await bus.close()
