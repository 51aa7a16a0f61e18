import pytest
"""Connection limits, message size and rate limits, over real sockets."""

import asyncio
import time

from tests.harness import PASSWORD


async def test_the_sixth_socket_of_a_user_is_closed_1008(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    for _ in range(5):
        await server.connect(cookie)
    sixth = await server.connect(cookie, expect_connected=False)
    assert await sixth.closed() == (1008, "Maximum connections exceeded (5 per user)")
    # Another user is not affected.
    _, other = await server.user_session("bob")
    await server.connect(other)


async def test_the_101st_connection_overall_is_closed_1013(make_server):
    server = await make_server()
    cookies = []
    for n in range(21):
        server.add_user(f"user{n}")
        cookies.append(await server.login(f"user{n}", PASSWORD))
    opened = await asyncio.gather(*(server.connect(cookies[n // 5]) for n in range(100)))
    assert len(opened) == 100
    extra = await server.connect(cookies[20], expect_connected=False)
    assert await extra.closed() == (1013, "Server capacity reached - try again later")
    # A slot frees when a client leaves.
    opened[0].close()
    await opened[0].recv()
    await server.until(lambda: len(server.connection_ids()) == 99)  # the server processed the close
    await server.connect(cookies[20])


async def test_no_cookie_or_a_bad_one_is_closed_1008_before_any_data(make_server):
    server = await make_server()
    for cookie in (None, "not-a-session", "x" * 500):
        client = await server.connect(cookie, expect_connected=False)
        msg = await client.recv()
        assert msg is None, msg  # no data first
        assert (client.close_code, client.close_reason) == (1008, "Authentication required")


async def test_a_message_over_the_size_limit_closes_1009(make_server):
    server = await make_server(streaming__max_message_bytes=1024)
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.send({"type": "ping", "pad": "x" * 1000})
    await client.expect("pong")  # just under the limit is fine
    await client.send({"type": "ping", "pad": "x" * 2000})
    code, _ = await client.closed()
    assert code == 1009


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_a_flooding_client_is_rate_limited_then_closed_while_others_are_served(make_server):
    server = await make_server(limits__rate_limit_close_after_seconds=1.0)
    _, flood_cookie = await server.user_session("flood")
    _, calm_cookie = await server.user_session("calm")
    flooder = await server.connect(flood_cookie)
    calm = await server.connect(calm_cookie)

    async def flood():
        # About 1000 messages a second until the server closes the socket.
        while flooder.close_code is None:
            for _ in range(10):
                try:
                    await flooder.send({"type": "ping"})
                except Exception:
                    return
            await asyncio.sleep(0.01)

    flooding = asyncio.ensure_future(flood())
    saw_rate_limited = False
    while True:
        msg = await flooder.recv()
        if msg is None:
            break
        if msg["type"] == "error" and msg["data"]["code"] == "RATE_LIMIT_EXCEEDED":
            assert msg["data"]["details"] == {"closeCode": 1008}  # the cause of the close that follows
            continue
        if msg["type"] == "error":
            assert msg["data"]["code"] == "RATE_LIMITED"
            saw_rate_limited = True
            # Meanwhile another client is answered promptly.
            started = time.monotonic()
            await calm.send({"type": "ping"})
            await calm.expect("pong")
            assert time.monotonic() - started < 0.5
    await flooding
    assert saw_rate_limited
    assert (flooder.close_code, flooder.close_reason) == (1008, "Rate limit exceeded")
    await calm.assert_nothing_pending()
