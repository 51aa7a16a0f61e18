"""Each user's portfolio state in Redis, changed by the publish script in the same atomic step that
gives the event its offset, so every node - started late, restarted, or never having seen the user
- loads the same state at the same ``seq`` (one answer everywhere, issue 14).

What the state is stays decided in Python (``core.portfolio.PortfolioState``): this module turns an
event into the few facts the script needs (which entry, its New York trading day, open or
closing) and the script only keeps "the newest entry per key", plus the day rule (closed orders
and trades of earlier days leave when a newer day is seen; trades of an older day are not added).
``tests/unit/portfolio_ws/bus/test_state.py`` checks that both give the same snapshot for seeded random
event streams.

Keys (hash-tagged by user, so a user's keys share one Redis Cluster slot with its offset):
- ``<p>state:{<user>}``: hash. ``day`` (the newest trading day seen, a date ordinal), ``a`` (the
  account event), ``p:<symbol>`` (a position event), ``o:<order id>`` (``"<day> <open 0|1> <event>"``).
- ``<p>trades:{<user>}``: list of ``"<day> <event>"``, the last ``SNAPSHOT_TRADES`` of the day.
Events are stored as ``codec.to_dict`` JSON, exactly as the bus carries them.
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import Any

import ujson

from ..core.codec import from_dict
from ..core.equity import units
from ..core.events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted
from ..core.portfolio import SNAPSHOT_TRADES, PortfolioState, trading_day
from ..core.users import UserSnapshot
from ..errors import InvalidEvent

# A Lua fragment for the publish script. Expects ``sk``/``tk`` (state hash, trades list), ``payload``
# (the event's JSON) and ``kind, field, day, flag`` (from ``state_args``).
APPLY_LUA = """
local function see(d)
  local cur = redis.call('HGET', sk, 'day')
  if cur and d <= tonumber(cur) then return tonumber(cur) end
  redis.call('HSET', sk, 'day', d)
  if cur then
    local all = redis.call('HGETALL', sk)
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 2) == 'o:' then
        local od, open = string.match(all[i + 1], '^(%d+) (%d) ')
        if open == '0' and tonumber(od) < d then redis.call('HDEL', sk, all[i]) end
      end
    end
    local kept = {}
    for _, t in ipairs(redis.call('LRANGE', tk, 0, -1)) do
      if tonumber(string.match(t, '^(%d+) ')) >= d then kept[#kept + 1] = t end
    end
    redis.call('DEL', tk)
    if #kept > 0 then redis.call('RPUSH', tk, unpack(kept)) end
  end
  return d
end
if kind == 'p' then
  if flag == '1' then redis.call('HDEL', sk, field) else redis.call('HSET', sk, field, payload) end
else
  local d = tonumber(day)
  local today = see(d)
  if kind == 'o' then
    if flag == '1' or d >= today then
      redis.call('HSET', sk, field, string.format('%d', d) .. ' ' .. flag .. ' ' .. payload)
    else
      redis.call('HDEL', sk, field)
    end
  elseif kind == 'a' then
    redis.call('HSET', sk, 'a', payload)
  elseif d == today then
    redis.call('RPUSH', tk, string.format('%d', d) .. ' ' .. payload)
    redis.call('LTRIM', tk, -TRADES_KEPT, -1)
  end
end
""".replace("TRADES_KEPT", str(SNAPSHOT_TRADES))

# KEYS: seq, state, trades, recovery. ARGV: how many history entries at most, the seconds the offset
# and state are kept from now (0: until deleted; a reader keeps them as a publish does).
# One script, so the offset, the state and the history are read at one instant.
READ_LUA = """
if ARGV[2] ~= '0' then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', ARGV[1])}
"""


def state_args(event: Event) -> tuple[str, str, str, str]:
    """(kind, hash field, trading day ordinal, flag) of ``event`` for ``APPLY_LUA``."""
    if isinstance(event, PositionUpdate):
        return "p", f"p:{event.symbol}", "0", "1" if event.quantity == 0 else "0"
    if isinstance(event, OrderUpdate):
        return "o", f"o:{event.order_id}", _day(event.last_time), "1" if event.is_open else "0"
    if isinstance(event, AccountUpdate):  # the field: the equity point (cluster/equity.py)
        return "a", f"{event.timestamp.timestamp()!r} {units(event.equity)}", _day(event.timestamp), "0"
    assert isinstance(event, TradeExecuted)
    return "t", "", _day(event.executed_at), "0"


def state_events(state: PortfolioState) -> list[Event]:
    """The events that build ``state`` again from nothing (``APPLY_LUA`` in this order): the
    account, the positions, the orders, then the trades, oldest first."""
    events: list[Event] = [state.account] if state.account is not None else []
    return events + list(state.positions.values()) + list(state.orders.values()) + list(state.trades)


def _day(moment: Any) -> str:
    return str(trading_day(moment).toordinal())


def snapshot_from(reply: list[Any], horizon: float) -> tuple[UserSnapshot, int]:
    """``READ_LUA``'s reply as a ``UserSnapshot`` (history no older than ``horizon``), and how
    many entries did not parse (left out; a state that doesn't parse is served empty)."""
    seq_text, fields, trades, entries = reply
    invalid = 0
    try:
        state = restore(fields, trades)
    except (ValueError, InvalidEvent):
        state, invalid = PortfolioState(), 1
    history: list[tuple[int, float, Event]] = []
    for entry_id, values in reversed(entries or []):
        item = dict(zip(values[::2], values[1::2]))
        if "s" in item:  # a sync (bus/script.py SYNC_LUA): the state holds it, the history starts after it
            continue
        try:
            at = float(item.get("t", "0"))
            if at >= horizon:
                history.append((int(entry_id.split("-", 1)[0]), at, from_dict(ujson.loads(item["e"]))))
        except (ValueError, KeyError, InvalidEvent):
            invalid += 1
    return UserSnapshot(int(seq_text) if seq_text is not None else 0, state, history), invalid


def restore(fields: list[str], trades: list[str]) -> PortfolioState:
    """The ``PortfolioState`` the hash (as HGETALL's flat list) and the trades list describe.
    Raises ``InvalidEvent``/``ValueError`` when an entry is not what the script writes."""
    state = PortfolioState()
    for name, value in zip(fields[::2], fields[1::2]):
        if name == "day":
            state.day = date.fromordinal(int(value))
        elif name == "a":
            state.account = _event(value, AccountUpdate)
        elif name.startswith("p:"):
            position = _event(value, PositionUpdate)
            state.positions[position.symbol] = position
        elif name.startswith("o:"):
            order = _event(value.split(" ", 2)[2], OrderUpdate)
            state.orders[order.order_id] = order
    state.trades = deque((_event(t.split(" ", 1)[1], TradeExecuted) for t in trades), maxlen=SNAPSHOT_TRADES)
    return state


def _event(text: str, kind: type[Any]) -> Any:
    event = from_dict(ujson.loads(text))
    if not isinstance(event, kind):
        raise ValueError(f"a {kind.__name__} entry holds a {type(event).__name__}")
    return event
