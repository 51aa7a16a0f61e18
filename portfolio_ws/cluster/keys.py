"""The names of every key and channel this server makes in Redis, built here and nowhere else.

A name is ``<prefix><part>:<part>...``. ``prefix`` is ``cluster.key_prefix`` (``KEY_PREFIX`` unless
set), so several deployments can share one Redis. A per-user key carries the user as a hash tag,
``{<user>}`` (``user_key``): the keys one script touches together (the bus's offsets, state, history
and seen ids of a user) then share a Redis Cluster slot. No module writes ``pws:`` or joins a
prefix to a name itself; tests/unit/portfolio_ws/cluster/test_keys.py holds every name unchanged
(nodes of two releases share one Redis during a rolling upgrade).
"""

from __future__ import annotations

KEY_PREFIX = "pws:"


def key(prefix: str, *parts: str) -> str:
    """``<prefix>part:part...``."""
    return prefix + ":".join(parts)


def user_key(prefix: str, name: str, user_id: str, *rest: str) -> str:
    """``<prefix><name>:{<user>}[:rest...]``: in the user's hash slot."""
    return key(prefix, name, "{" + user_id + "}", *rest)
