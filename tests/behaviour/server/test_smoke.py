from tests.builders import position


async def test_login_connect_subscribe_receive(make_server):
    server = await make_server(streaming__batch_window_ms=50)
    user, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    await client.subscribe("positions")
    snap = await client.expect("snapshot")
    assert snap["data"] == {"positions": []}
    server.publish(position(user.user_id))
    msg = await client.expect("position_update")
    assert msg["data"]["quantity"] == "100" and msg["seq"] == 1
