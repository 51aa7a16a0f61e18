"""``Service.when``: awaiting a change of the server instead of polling it."""

from __future__ import annotations

import asyncio

import pytest


async def test_resolves_at_once_when_the_condition_already_holds(make_server):
    server = await make_server()
    await asyncio.wait_for(server.service.when(lambda: True), 1)


async def test_resolves_after_the_socket_opens_and_after_it_closes(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    opened = server.service.when(lambda: len(server.connection_ids()) == 1)
    assert not opened.done()
    client = await server.connect(cookie)
    await asyncio.wait_for(opened, 5)
    closed = server.service.when(lambda: not server.connection_ids())
    client.close()
    await asyncio.wait_for(closed, 5)


async def test_a_waiter_that_gives_up_is_forgotten_and_a_failing_condition_fails_only_its_waiter(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    forgotten = server.service.when(lambda: False)
    forgotten.cancel()

    def buggy() -> bool:
        if server.connection_ids():
            raise RuntimeError("a bug in the waiter's condition")
        return False

    broken = server.service.when(buggy)
    client = await server.connect(cookie)  # the server serves on
    with pytest.raises(RuntimeError, match="a bug in the waiter's condition"):
        await asyncio.wait_for(broken, 5)
    await client.subscribe("positions")
    assert (await client.expect("snapshot"))["data"] == {"positions": []}
