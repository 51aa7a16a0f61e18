"""Cluster mode: each user's equity through the day in Redis, so every node answers
``GET /api/portfolio/equity`` alike (``core.equity.EquityHistory`` is the one-process version,
and the contract both keep: tests/unit/portfolio_ws/core/test_equity_contract.py).

A node takes in only the events of users connected to it, so a history each node built from its
own deliveries would differ from node to node and start when the user's first socket arrived. The
point is recorded instead where every event passes exactly once: the bus's publish script runs
``EQUITY_LUA`` for each account update it numbers (bus/script.py), in the same atomic step.

``<prefix>equity:{<user>}`` (the user's hash slot): hash of ``day`` (the New York date's ordinal),
``last`` (the newest point's time) and ``m:<minute>`` = ``"<time> <equity in 1/10,000 $>"``, one
per minute as in ``core.equity``: stamped with the minute's first update, holding its last equity;
a later day starts afresh, an earlier day or a time before the newest point is ignored. It expires
with the user's state (``cluster.state_keep_days``).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import redis.asyncio as aioredis

from ..core.equity import from_units, units
from ..core.portfolio import trading_day
from .keys import KEY_PREFIX, user_key
from .redis import request_client

# Expects ``ek`` (the user's equity key), ``eday`` (day ordinal, a number), ``et`` (the update's
# epoch seconds, as text) and ``ev`` (equity in 1/10,000 $, as text).
EQUITY_LUA = """
local cur = redis.call('HGET', ek, 'day')
if not cur or eday > tonumber(cur) then
  redis.call('DEL', ek)
  redis.call('HSET', ek, 'day', string.format('%d', eday))
  cur = eday
end
if eday == tonumber(cur) then
  local last = redis.call('HGET', ek, 'last')
  local t = tonumber(et)
  if not last or t >= tonumber(last) then
    if last and math.floor(t / 60) == math.floor(tonumber(last) / 60) then
      redis.call('HSET', ek, 'm:' .. string.format('%d', math.floor(t / 60)), last .. ' ' .. ev)
    else
      redis.call('HSET', ek, 'm:' .. string.format('%d', math.floor(t / 60)), et .. ' ' .. ev, 'last', et)
    end
  end
end
"""

# KEYS: the equity key. ARGV: day ordinal, epoch seconds, equity units. (The publish script runs the
# same fragment; this one records a point by itself.)
_RECORD = "local ek, eday, et, ev = KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3]\n" + EQUITY_LUA


def equity_key(prefix: str, user_id: str) -> str:
    return user_key(prefix, "equity", user_id)


def point_args(at: datetime, equity: Decimal) -> tuple[str, str, str]:
    """(day ordinal, epoch seconds, equity units) of one account update, as the script reads them."""
    return str(trading_day(at).toordinal()), repr(at.timestamp()), str(units(equity))


class RedisEquityHistory:
    """Reads the histories the publish script keeps; ``record`` adds a point directly."""

    def __init__(self, url: str, prefix: str = KEY_PREFIX) -> None:
        self.prefix = prefix
        self._redis: aioredis.Redis = request_client(url)
        self._record = self._redis.register_script(_RECORD)

    async def record(self, user_id: str, at: datetime, equity: Decimal) -> None:
        await self._record(keys=[equity_key(self.prefix, user_id)], args=list(point_args(at, equity)))

    async def read(self, user_id: str) -> tuple[date | None, list[tuple[datetime, Decimal]]]:
        """The user's latest day and its points, oldest first (None and [] before any)."""
        raw: dict[str, str] = await self._redis.hgetall(equity_key(self.prefix, user_id))  # type: ignore[misc,assignment]
        if "day" not in raw:
            return None, []
        points = []
        for name, value in raw.items():
            if name.startswith("m:"):
                t, v = value.split(" ", 1)
                points.append((float(t), int(v)))
        points.sort()
        return date.fromordinal(int(raw["day"])), [
            (datetime.fromtimestamp(t, timezone.utc), from_units(v)) for t, v in points]

    async def close(self) -> None:
        await self._redis.aclose()
