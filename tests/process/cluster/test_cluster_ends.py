"""Ends that reach every node at once (cluster/ends.py): a user removed through one node, and a
session logged out on one node, close their sockets on the other node too, with the same error
SESSION_EXPIRED and 1008 - not at its next session recheck, which these nodes run once an hour."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import Client
from tests.process.cluster.conftest import NodeFactory
from tests.publishing import new_key

pytestmark = [pytest.mark.slow, pytest.mark.redis]

NO_RECHECK = {"auth__session_recheck_seconds": 3600}
PROMPTLY = 3.0  # seconds: a pub/sub round trip on a loaded machine; the recheck would take an hour


async def ended(client: Client) -> float:
    """Seconds until the socket got the ended-session error and its 1008 close."""
    started = time.monotonic()
    error = await client.expect("error")
    assert error["data"]["code"] == "SESSION_EXPIRED" and error["data"]["details"]["closeCode"] == 1008
    assert await client.closed() == (1008, "Session expired")
    return time.monotonic() - started


async def two_nodes(make_node: NodeFactory) -> tuple[Any, Any]:
    a, b = await make_node(**NO_RECHECK), await make_node(**NO_RECHECK)
    for node in (a, b):
        await node.service.ends.subscribed.wait()
    return a, b


async def streaming(node: Any, cookie: str) -> Client:
    client = await node.connect(cookie)
    await client.subscribe("positions")
    await client.expect("snapshot")
    return client


async def test_a_removed_users_sockets_close_at_once_on_every_node(io_loop: Any, make_node: NodeFactory) -> None:
    a, b = await two_nodes(make_node)
    key = new_key(a, "platform-admin", scope="admin")
    alice = a.add_user("alice")
    cookie = await a.login("alice")
    bob_cookie = await a.login(a.add_user("bob").username)
    here, there, bobs = await streaming(a, cookie), await streaming(b, cookie), await streaming(b, bob_cookie)

    removed = await a.fetch(f"/api/v1/users/{alice.user_id}", "DELETE", headers={"Authorization": f"Bearer {key}"})
    assert removed.code == 204
    assert await ended(here) < PROMPTLY
    assert await ended(there) < PROMPTLY  # the other node: the removal came over Redis
    await bobs.assert_nothing_pending()  # someone else's socket on that node stays


async def test_a_logout_on_one_node_closes_the_sessions_sockets_on_the_other(io_loop: Any,
                                                                            make_node: NodeFactory) -> None:
    a, b = await two_nodes(make_node)
    a.add_user("carol")
    cookie, other = await a.login("carol"), await a.login("carol")  # two sessions of one user
    there, other_session = await streaming(b, cookie), await streaming(b, other)

    assert (await a.fetch("/api/auth/logout", "POST", cookie=cookie)).code == 200
    assert await ended(there) < PROMPTLY
    await other_session.assert_nothing_pending()  # only the session logged out ends
