"""Batching over a real socket. The batch window is set to a minute and the test sends the pending
windows itself (``service.flush()``), so what arrives depends on the rules, not on timing; the
tick's own rule (a window goes when due) is driven with an injected clock."""

from tests.builders import T0, account, order, position, trade
from tests.harness import FakeClock

LONG_WINDOW = 60_000


async def subscribed(server, cookie, *channels):
    client = await server.connect(cookie)
    await client.subscribe(*channels)
    await client.expect("snapshot")
    return client


async def test_many_updates_of_one_symbol_become_one_message_with_the_latest_values(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    client = await subscribed(server, cookie, "positions")
    for cents in range(10):
        server.publish(position(user.user_id, price=f"175.{cents:02d}"))
    server.service.flush()
    msg = await client.expect("position_update")
    assert msg["data"]["currentPrice"] == "175.09"
    assert msg["seq"] == 10
    await client.assert_nothing_pending()


async def test_a_lone_event_is_sent_as_its_own_type_and_more_as_a_batch(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    client = await subscribed(server, cookie, "positions", "account")
    server.publish(account(user.user_id))
    server.service.flush()
    assert (await client.recv())["type"] == "account_update"

    server.publish(position(user.user_id, "AAPL"))
    server.publish(position(user.user_id, "MSFT"))
    server.publish(account(user.user_id, equity="1.50"))
    server.publish(account(user.user_id, equity="2.50"))
    server.service.flush()
    msg = await client.expect("batch")
    assert set(msg["data"]) == {"positions", "account"}  # only the non-empty keys
    assert [p["symbol"] for p in msg["data"]["positions"]] == ["AAPL", "MSFT"]
    assert msg["data"]["account"]["equity"] == "2.50"  # account: latest only, an object
    assert msg["seq"] == 5


async def test_an_order_is_delivered_without_waiting_for_the_window(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    client = await subscribed(server, cookie, "positions", "orders")
    server.publish(position(user.user_id))
    server.publish(order(user.user_id))  # flushes the user's window at once, positions included
    msg = await client.expect("batch")  # no tick: the window is a minute long
    assert msg["data"]["orders"][0]["orderId"] == "order-1"
    assert msg["data"]["positions"][0]["symbol"] == "AAPL"


async def test_a_positions_only_connection_never_receives_orders(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    positions_only = await subscribed(server, cookie, "positions")
    everything = await subscribed(server, cookie, "positions", "orders", "trades")
    server.publish(order(user.user_id))
    server.publish(trade(user.user_id))
    server.publish(position(user.user_id))
    server.service.flush()
    assert (await everything.recv())["type"] == "order_update"
    assert (await everything.recv())["type"] == "trade_executed"
    assert (await everything.recv())["type"] == "position_update"
    msg = await positions_only.recv()
    assert msg["type"] == "position_update"
    await positions_only.assert_nothing_pending()


async def test_no_trade_is_ever_dropped(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW, streaming__immediate_channels=())
    user, cookie = await server.user_session("alice")
    client = await subscribed(server, cookie, "trades", "orders")
    for n in range(150):
        server.publish(trade(user.user_id, trade_id=f"t-{n}"))
        server.publish(order(user.user_id, status="partially_filled", filled=str(n + 1)))
    server.service.flush()
    msg = await client.expect("batch")
    assert [t["tradeId"] for t in msg["data"]["trades"]] == [f"t-{n}" for n in range(150)]
    assert len(msg["data"]["orders"]) == 1 and msg["data"]["orders"][0]["filledQty"] == "150"


async def test_a_connection_with_nothing_to_receive_receives_nothing(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    idle = await server.connect(cookie)  # subscribed to nothing
    account_only = await subscribed(server, cookie, "account")
    server.publish(position(user.user_id))
    server.publish(order(user.user_id))
    server.publish(trade(user.user_id))
    server.service.flush()
    await idle.assert_nothing_pending()
    await account_only.assert_nothing_pending()


async def test_connections_with_the_same_subscriptions_get_the_same_bytes(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    a = await subscribed(server, cookie, "positions", "account")
    b = await subscribed(server, cookie, "account", "positions")
    server.publish(position(user.user_id))
    server.publish(account(user.user_id))
    server.service.flush()
    assert await a.conn.read_message() == await b.conn.read_message()


async def test_the_periodic_callback_flushes_the_window(make_server):
    server = await make_server(streaming__batch_window_ms=20)
    user, cookie = await server.user_session("alice")
    client = await subscribed(server, cookie, "positions")
    server.publish(position(user.user_id))
    assert (await client.expect("position_update"))["seq"] == 1


async def test_users_without_connections_accumulate_nothing_but_keep_state(make_server):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    user, cookie = await server.user_session("alice")
    for n in range(50):
        server.publish(position(user.user_id, price=f"{100 + n}.00"))
    assert server.service.core.flush_due(server.service.clock() + 120) == 0  # no window waits to go
    assert not server.service.core.users[user.user_id].window
    client = await server.connect(cookie)
    await client.subscribe("positions")
    snap = await client.expect("snapshot")
    assert snap["seq"] == 50 and snap["data"]["positions"][0]["currentPrice"] == "149.00"
    server.service.flush()
    await client.assert_nothing_pending()


async def test_the_batcher_sends_each_users_window_at_its_own_moment_of_the_window(make_server):
    # The window is a wheel of 50 ms slots: each user's pending events go when the wheel passes
    # the user's slot, once a window, so users' messages are spread over the second.
    clock = FakeClock(T0.timestamp())
    server = await make_server(clock=clock, streaming__batch_window_ms=1000,
                               streaming__flush_interval_ms=50, limits__total_connections=100)
    core = server.service.core
    sessions = [await server.user_session(f"user{n}") for n in range(12)]
    by_time: dict[float, tuple[str, str]] = {}
    for user, cookie in sessions:  # two users whose slots differ
        by_time.setdefault(core.flush_time(user.user_id, clock.now), (user.user_id, cookie))
    (first_at, (first, first_cookie)), (second_at, (second, second_cookie)) = sorted(by_time.items())[:2]
    a = await subscribed(server, first_cookie, "positions")
    b = await subscribed(server, second_cookie, "positions")
    server.publish(position(first, price="1.00"))
    server.publish(position(second, price="2.00"))
    server.publish(position(first, price="1.10"))           # coalesced with the first
    clock.now = first_at - 0.01
    server.service.tick()                                    # nobody's moment yet
    await a.assert_nothing_pending()
    clock.now = first_at
    server.service.tick()                                    # the first user's window goes, alone
    assert (await a.expect("position_update"))["data"]["currentPrice"] == "1.10"
    await b.assert_nothing_pending()
    clock.now = second_at
    server.service.tick()
    assert (await b.expect("position_update"))["data"]["currentPrice"] == "2.00"
    await a.assert_nothing_pending()


async def test_the_batcher_sleeps_while_nothing_is_pending_and_wakes_for_a_window(make_server):
    # The batcher ticks only while a window is pending, so an idle node does not wake 20 times a
    # second; a window pending after a pause still goes by itself, within its window.
    server = await make_server(streaming__batch_window_ms=200, streaming__flush_interval_ms=50)
    user, cookie = await server.user_session("alice")
    client = await subscribed(server, cookie, "positions")
    await server.until(lambda: not server.service.batching)
    server.publish(position(user.user_id, price="1.00"))
    assert server.service.batching
    assert (await client.expect("position_update"))["data"]["currentPrice"] == "1.00"
    await server.until(lambda: not server.service.batching)  # paused again once it went
    await client.assert_nothing_pending()
