"""Cluster mode: the ids of published items each user has had, in Redis, so a retry sent to any
node delivers nothing twice (``core.seen`` is the one-process version).

One sorted set per user, ``<prefix>published:{<user>}`` (the user's hash slot, like their other
keys), scored by the Redis clock: the last ``SEEN_PER_USER`` ids, the set expiring a day after its
last write. Claiming checks and adds in one script, so two nodes given the same id at once can't
both take it; a batch's publishes go in one pipeline, in item order (the first of two equal ids wins).

``CLAIM_LUA`` is the one home of the claim: the bus's publish script (bus/script.py) runs it together
with the publish itself, for the HTTP publish and the Redis Streams ingest alike
(``EventBus.publish_item``): a node killed between the two can't leave an id taken but its event
unpublished.
"""

from __future__ import annotations

from .keys import user_key

KEEP_MS = 24 * 3600 * 1000

# Lua with ``seen``: the user's set, ``id``, ``window``, ``keep``: when the id was taken before, the
# script returns ``taken`` (its caller's "duplicate"); else the id is added, trimmed to the window.
CLAIM_LUA = """
if redis.call('ZSCORE', seen, id) then return taken end
local now = redis.call('TIME')
redis.call('ZADD', seen, tonumber(now[1]) * 1000000 + tonumber(now[2]), id)
redis.call('ZREMRANGEBYRANK', seen, 0, -(tonumber(window) + 1))
redis.call('PEXPIRE', seen, keep)
"""


def seen_key(prefix: str, user_id: str) -> str:
    """The user's set of published ids (its hash slot: ``{<user>}``)."""
    return user_key(prefix, "published", user_id)
