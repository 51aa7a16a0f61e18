"""Admin figures of every node, so any node can answer for the whole cluster.

Each node writes a summary of its own admin report to the Redis hash ``<p>nodes`` (field: node id,
value: JSON with the time it was written) every ``INTERVAL_SECONDS``, and removes it at shutdown.
A node's admin stats then carry ``cluster``: every node's summary still fresh (written within
``STALE_AFTER_SECONDS``; a dead node drops out by itself) and their sum. Counters are per node
since its start, so a restarted node's totals start again from zero. A killed node never removes
its field: every node, as it writes its own, deletes the fields whose figures are older than
``STALE_AFTER_SECONDS`` (one script, so a field rewritten meanwhile is never deleted), so the hash
holds the live nodes and those dead for less than the bound plus one period (issue 14).

A node id is one live node's: a second node started under an id still in use (an operator's
copy-paste; the trial ran two feed leaders and double intake with no word said) is found here,
since each write reads back the field it replaces. A field that changed since this node's last
write was written by another live process under the same id (a dead one writes nothing: a node
restarted under its id after a crash is not one). The one started later stops with a clear error
(``duplicate``: ``serve`` exits 2 naming ``cluster.node_id``); the other logs it and goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any, Callable

import redis.asyncio as aioredis
import ujson
from redis.exceptions import RedisError

from .keys import key
from .redis import request_client

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
STALE_AFTER_SECONDS = 3 * INTERVAL_SECONDS
SUMMED = ("activeConnections", "totalMessagesDelivered", "totalEventsEmitted", "totalDisconnects",
          "totalReconnects", "totalRejectedConnections", "totalRateLimited", "totalControlMessages")


# KEYS[1] the nodes hash; ARGV: this node's id, its summary, now (s), the stale bound (s). Writes
# this node's field and deletes the others reported before now - bound, judged by this node's clock
# as ``read`` judges them. A field that is not a summary (no ``reportedAt``) is left alone. Returns
# how many went, and the value this node's field held before (false: none).
PUBLISH_LUA = """
local before = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local oldest = tonumber(ARGV[3]) - tonumber(ARGV[4])
local fields = redis.call('HGETALL', KEYS[1])
local pruned = 0
for i = 1, #fields, 2 do
  local ok, entry = pcall(cjson.decode, fields[i + 1])
  local at = ok and type(entry) == 'table' and tonumber(entry['reportedAt'])
  if at and at < oldest then
    redis.call('HDEL', KEYS[1], fields[i])
    pruned = pruned + 1
  end
end
return {pruned, before}
"""


FORGET_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
"""


def summary(report: dict[str, Any], now: float) -> dict[str, Any]:
    """What a node shares of its admin report."""
    return {"id": report["node"]["id"], "pid": report["node"]["pid"], "status": report["status"],
            **{key: report[key] for key in SUMMED}, "reportedAt": round(now, 3)}


def combine(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The cluster section: each fresh node, and the totals over them."""
    nodes = sorted(summaries, key=lambda s: str(s["id"]))
    return {"nodes": nodes, "total": {"nodes": len(nodes), **{key: sum(int(s.get(key, 0)) for s in nodes)
                                                            for key in SUMMED}}}


class ClusterStats:
    def __init__(self, url: str, node_id: str, prefix: str, report: Callable[[], dict[str, Any]],
                 clock: Callable[[], float]) -> None:
        self.node_id = node_id
        self.key = key(prefix, "nodes")
        self.report = report
        self.clock = clock
        self.run = uuid.uuid4().hex[:12]  # this process's run of the node id
        self.started_at = clock()
        self._written: str | None = None  # the field as this node last wrote it
        self.duplicate: str | None = None  # set when this node must stop: its id is another live node's
        self.on_duplicate: Callable[[], None] = lambda: None
        self._warned = False
        self._redis: aioredis.Redis = request_client(url)
        self._publish = self._redis.register_script(PUBLISH_LUA)
        self._task: asyncio.Task[None] | None = None

    async def publish(self) -> int:
        """Write this node's summary; delete dead nodes' (stale) ones. Returns how many went."""
        now = self.clock()
        text = ujson.dumps({**summary(self.report(), now), "run": self.run, "startedAt": round(self.started_at, 3)})
        pruned, before = await self._publish(keys=[self.key], args=[  # type: ignore[misc]
            self.node_id, text, repr(now), STALE_AFTER_SECONDS])
        if self._written is not None and before is not None and before != self._written:
            self._another(before)
        self._written = text
        return int(pruned)

    def _another(self, text: str) -> None:
        """Another live process wrote this node's field since this one did: the later started stops."""
        try:
            other = ujson.loads(text)
            theirs = (float(other["startedAt"]), str(other["run"]))
        except (ValueError, KeyError, TypeError):  # a node of an older release: it was there first
            other, theirs = {}, (float("-inf"), "")
        who = f"pid {other.get('pid', '?')}" if isinstance(other, dict) else "another process"
        if (self.started_at, self.run) > theirs:
            self.duplicate = (f"{self.node_id} is in use by another live node ({who}, started earlier): every "
                              f"node needs its own id; this one (pid {os.getpid()}) stopped")
            log.error("cluster: node id %s", self.duplicate)
            self.on_duplicate()
        elif not self._warned:
            self._warned = True
            log.warning("cluster: node id %s is also used by a node started later (%s); that one stops",
                        self.node_id, who)

    async def _loop(self) -> None:
        while True:
            try:
                await self.publish()
            except (RedisError, OSError) as exc:
                log.debug("cluster stats: not published (%s)", exc)
            await asyncio.sleep(INTERVAL_SECONDS)  # the publishing period

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def read(self, own: dict[str, Any]) -> dict[str, Any]:
        """The cluster section for an admin report; ``own`` is this node's fresh report. Without
        Redis, just this node (``reachable: false``)."""
        now = self.clock()
        mine = summary(own, now)
        try:
            raw: dict[str, str] = await self._redis.hgetall(self.key)  # type: ignore[misc,assignment]
        except (RedisError, OSError):
            return {**combine([mine]), "reachable": False}
        others = []
        for node, text in raw.items():
            if node == self.node_id:
                continue
            try:
                entry = ujson.loads(text)
            except ValueError:
                continue
            if isinstance(entry, dict) and now - float(entry.get("reportedAt", 0)) <= STALE_AFTER_SECONDS:
                others.append(entry)
        return {**combine([mine, *others]), "reachable": True}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            if self._written is not None:  # only if still this node's: never a live namesake's
                await self._redis.eval(FORGET_LUA, 1, self.key, self.node_id, self._written)  # type: ignore[misc]
        except (RedisError, OSError):
            pass
        await self._redis.aclose()
