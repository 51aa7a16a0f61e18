"""Isolation: a user's connections never receive a byte of another user's data."""

from tests.builders import account, order, position, trade


async def test_two_users_with_interleaved_events_never_see_each_other(make_server):
    server = await make_server(streaming__batch_window_ms=60_000)
    alice, alice_cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    clients = {}
    for name, cookie in (("alice", alice_cookie), ("bob", bob_cookie)):
        conns = []
        for _ in range(2):
            client = await server.connect(cookie)
            await client.subscribe("positions", "orders", "account", "trades")
            await client.expect("snapshot")
            conns.append(client)
        clients[name] = conns

    markers = {"alice": "AAAA", "bob": "BBBB"}
    users = {"alice": alice.user_id, "bob": bob.user_id}
    for n in range(20):
        for name in ("alice", "bob"):
            uid, mark = users[name], markers[name]
            server.publish(position(uid, symbol=f"{mark}{n % 3}"))
            server.publish(account(uid))
            if n % 5 == 0:
                server.publish(order(uid, order_id=f"{mark}-order-{n}"))
                server.publish(trade(uid, trade_id=f"{mark}-trade-{n}", symbol=f"{mark}X"))
    server.service.flush()

    for name, conns in clients.items():
        other = "bob" if name == "alice" else "alice"
        for client in conns:
            seen = 0
            await client.send({"type": "ping"})  # everything before the pong is what was sent
            while True:
                raw = await client.conn.read_message()
                assert raw is not None
                assert users[other] not in raw and markers[other] not in raw
                if '"type":"pong"' in raw:
                    break
                assert users[name] in raw
                seen += 1
            assert seen > 0


async def test_rest_portfolio_is_per_user(make_server):
    server = await make_server()
    alice, alice_cookie = await server.user_session("alice")
    bob, bob_cookie = await server.user_session("bob")
    server.publish(position(alice.user_id, symbol="ALICE"))
    server.publish(position(bob.user_id, symbol="BOB"))
    response = await server.fetch("/api/portfolio", cookie=bob_cookie)
    assert b"ALICE" not in response.body and alice.user_id.encode() not in response.body
    assert b"BOB" in response.body
