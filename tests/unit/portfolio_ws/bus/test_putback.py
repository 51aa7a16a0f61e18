"""RedisBus put-backs after Redis lost a user (bus/putback.py, RESTORE_LUA): two nodes holding
different states both put back; the one that held the further offset before the loss wins, at a new
offset, and no offset is used twice."""

from __future__ import annotations

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
