"""The Lua script the Redis bus runs for each publish, as one atomic step in Redis: refuse an event at
or below the user's last source position, run a retried publish once (its marker), number the event
(INCR of the user's offset, created at the publisher's clock), take its published-item id when it
has one (``cluster.published.CLAIM_LUA``: an id the user already had is not published again), record it in the user's recovery
stream, apply it to the user's state (``state.APPLY_LUA``) and an account update's equity to the
user's day (``cluster.equity.EQUITY_LUA``), keep the offset and state for
``cluster.state_keep_days`` from now, and SPUBLISH it on the user's channel. ``SYNC_LUA`` does the
same for a sync (a user's whole state replaced).
Keys and arguments are laid out by ``RedisBus`` (bus/redis.py), which owns the key names."""

from __future__ import annotations

from ..cluster.equity import EQUITY_LUA
from ..cluster.published import CLAIM_LUA
from .state import APPLY_LUA

POSITION_KEEP_SECONDS = 604800  # a week: how long a user's last source position is kept

# KEYS: seq, recovery, marker, position, state, trades, published ids, equity. ARGV: payload, seq base, max
# events, max age, channel, publish time, position, then state_args (kind, field, day, flag), then the
# item id ('' = none), the ids window and how long they are kept (ms), then the seconds the user's
# offset and state are kept after this event (0: until deleted), refreshed here with the update. Returns the offset; 0 when the
# publish had run (its marker) or is at or below the position; -1 when the item id was taken before.
PUBLISH_LUA = """
if ARGV[7] ~= '' then
  local cur = redis.call('GET', KEYS[4])
  if cur then
    local epoch, n = string.match(cur, '^(.*):(%d+)$')
    local new_epoch, new_n = string.match(ARGV[7], '^(.*):(%d+)$')
    if epoch == new_epoch and tonumber(new_n) <= tonumber(n) then return 0 end
  end
end
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', 300) == false then return 0 end
if ARGV[12] ~= '' then
  local seen, id, window, keep, taken = KEYS[7], ARGV[12], ARGV[13], ARGV[14], -1
""" + CLAIM_LUA + """
end
if ARGV[7] ~= '' then redis.call('SET', KEYS[4], ARGV[7], 'EX', """ + str(POSITION_KEEP_SECONDS) + """) end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[5], 'r', ARGV[2])  -- numbered afresh above it: the state holds only what follows (RESTORE_LUA)
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-1', 'e', ARGV[1], 't', ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SPUBLISH', ARGV[5], seq .. ' ' .. ARGV[1])
local sk, tk, payload = KEYS[5], KEYS[6], ARGV[1]
local kind, field, day, flag = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
""" + APPLY_LUA + """
if kind == 'a' then
  local ek, eday = KEYS[8], tonumber(day)
  local et, ev = string.match(field, '^(%S+) (%S+)$')
""" + EQUITY_LUA + """
end
for _, key in ipairs({KEYS[1], sk, tk, KEYS[8]}) do
  if ARGV[15] == '0' then redis.call('PERSIST', key) else redis.call('EXPIRE', key, ARGV[15]) end
end
return seq
"""


def apply_events(count: int) -> str:
    """A Lua fragment: ``apply`` (``APPLY_LUA`` on ``sk``/``tk``) defined, then run on the events laid
    out in ARGV from ``count``: their number, then per event its JSON, kind, field, day and flag."""
    return ("\nlocal function apply(payload, kind, field, day, flag)\n" + APPLY_LUA + "end\n"
            f"for i = 0, tonumber(ARGV[{count}]) - 1 do\n"
            f"  local at = {count + 1} + i * 5\n"
            "  apply(ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4])\n"
            "end\n")


def keep_state(seconds: int) -> str:
    """A Lua fragment: the offset (KEYS[1]), ``sk`` and ``tk`` kept ARGV[seconds] seconds (0: until deleted)."""
    return ("for _, key in ipairs({KEYS[1], sk, tk}) do\n"
            f"  if ARGV[{seconds}] == '0' then redis.call('PERSIST', key) "
            f"else redis.call('EXPIRE', key, ARGV[{seconds}]) end\n"
            "end\n")


# A sync (core/sync.py): the user's whole state replaced, in one atomic step like a publish. Run
# once (its marker), numbered once (INCR), the user's history emptied and started again with the
# sync's entry (field ``s``: a node that missed the message repairs from it; a load skips it, the
# state holds it), the state and trades deleted and rebuilt from the sync's events by ``APPLY_LUA``
# in their order (the trades held re-applied last when the sync has none), SPUBLISHed like an event.
# KEYS: seq, recovery, marker, state, trades. ARGV: payload (the sync's JSON), seq base, max events,
# max age, channel, publish time, the seconds kept (0: until deleted), keep trades ('1'/'0'), the
# number of events, then per event: its JSON, kind, field, day, flag (``state.state_args``).
# Returns the offset; 0 when the sync had run (its marker).
SYNC_LUA = """
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', 300) == false then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[2]) end
local seq = redis.call('INCR', KEYS[1])
local sk, tk = KEYS[4], KEYS[5]
local kept = {}
if ARGV[8] == '1' then kept = redis.call('LRANGE', tk, 0, -1) end
redis.call('DEL', KEYS[2], sk, tk)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-1', 's', ARGV[1], 't', ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SPUBLISH', ARGV[5], seq .. ' ' .. ARGV[1])
""" + apply_events(9) + """for _, entry in ipairs(kept) do
  local day, payload = string.match(entry, '^(%d+) (.*)$')
  apply(payload, 't', '', day, '0')
end
""" + keep_state(7) + "return seq\n"

# A node puts back a user's state it holds after Redis lost it (restarted empty, or the keys
# expired while the node still served the user), as a sync (``SYNC_LUA``) at a new offset: every node
# following the user replaces its state with it and its sockets get a snapshot, and a node that
# loads the user afterwards gets the whole state. Redis has lost the user when its offset is gone
# (nothing published since), or when the state is marked ``r`` by PUBLISH_LUA (numbered afresh above
# the offset ``r``: it holds only the events published since). The node writes only at the very
# offset Redis is at (it has applied everything published since), only a state it held from before
# the loss (its offset before the loss below ``r``: a node that loaded the user after the loss, from
# the events since alone, and then missed one, must not put that partial state back over the whole
# one), and a later put-back replaces an earlier one only from a further offset before the loss
# (``f``; ``r`` and ``f`` kept in the state hash until a platform's sync) and with nothing published
# in between: the furthest state wins, and no offset is ever used twice.
# KEYS: seq, recovery, state, trades. ARGV: the node's offset, the offset it held before the loss,
# the seq base (publish time in ms), max events, max age, channel, publish time, the seconds kept
# (0: until deleted), the sync's JSON, the number of events, then per event: its JSON, kind, field,
# day, flag. Returns the new offset; 0 when Redis holds the whole state (nothing lost, or put back
# from as far), -1 when Redis is at another offset (events on their way to the node: try again).
RESTORE_LUA = """
local cur, fresh = redis.call('GET', KEYS[1]), nil
if cur then
  if cur ~= ARGV[1] then return -1 end
  fresh = redis.call('HGET', KEYS[3], 'r')
  if not fresh then return 0 end
  if fresh == '1' then fresh = cur end  -- the mark of an earlier build: where it started is unknown
  if tonumber(ARGV[2]) >= tonumber(fresh) then return 0 end
  local from = redis.call('HGET', KEYS[3], 'f')
  if from and tonumber(from) >= tonumber(ARGV[2]) then return 0 end
else
  fresh = ARGV[1]
  if tonumber(ARGV[3]) > tonumber(fresh) then fresh = ARGV[3] end
  redis.call('SET', KEYS[1], fresh)
end
local seq = redis.call('INCR', KEYS[1])
local sk, tk = KEYS[3], KEYS[4]
redis.call('DEL', KEYS[2], sk, tk)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], seq .. '-1', 's', ARGV[9], 't', ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('SPUBLISH', ARGV[6], seq .. ' ' .. ARGV[9])
""" + apply_events(10) + """redis.call('HSET', sk, 'f', ARGV[2], 'r', fresh)
""" + keep_state(8) + "return seq\n"
