"""permessage-deflate (streaming.compression): negotiated when offered, messages arrive intact,
and connections without it keep receiving the shared uncompressed frames."""

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


from tests.builders import position
from tests.harness import Client


async def connect(server, cookie, compress):
    request = HTTPRequest(server.ws_url, headers={"Cookie": f"session={cookie}"})
    conn = await websocket_connect(request, compression_options={} if compress else None)
    client = Client(conn)
    await client.expect("info", "CONNECTED")
    return client


async def test_compressed_and_plain_clients_receive_the_same_messages(make_server):
    server = await make_server(streaming__compression=True, streaming__batch_window_ms=60_000,
                               server__websocket_ping_interval_seconds=0.1)
    user, cookie = await server.user_session("alice")
    zipped = await connect(server, cookie, compress=True)
    plain = await connect(server, cookie, compress=False)
    assert "permessage-deflate" in zipped.conn.headers.get("Sec-WebSocket-Extensions", "")
    assert "Sec-WebSocket-Extensions" not in plain.conn.headers
    for client in (zipped, plain):
        await client.subscribe("positions")
        await client.expect("snapshot")
    for n in range(3):
        server.publish(position(user.user_id, symbol=f"SYM{n}"))
    server.service.flush()
    a, b = await zipped.expect("batch"), await plain.expect("batch")
    assert a == b and len(a["data"]["positions"]) == 3
    await zipped.assert_nothing_pending()  # pings and pongs keep flowing on both kinds
    await plain.assert_nothing_pending()


async def test_compression_is_not_offered_by_default(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await connect(server, cookie, compress=True)
    assert "Sec-WebSocket-Extensions" not in client.conn.headers
