"""The Tornado adapter (``server/tornado_socket.py``) relies on private attributes of Tornado's
objects. Each is checked here on a live connection: a Tornado upgrade that renames or removes one
fails this test by name, instead of the server silently mis-measuring or crashing under load."""

from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from portfolio_ws.server.tornado_socket import PRIVATE, private_owners


async def test_every_private_attribute_the_adapter_uses_exists(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    await server.connect(cookie)
    [socket] = server.service.sockets.values()
    owners = private_owners(socket)
    # The adapter drops the request's parsed cookies once the socket is open: look at a fresh request.
    fresh = HTTPServerRequest(start_line=RequestStartLine("GET", "/", "HTTP/1.1"),
                              headers=HTTPHeaders({"Host": "x", "Cookie": "a=b"}))
    assert fresh.cookies["a"].value == "b"
    owners["request"] = fresh
    missing = [f"{owner}.{name} ({why})" for owner, name, why in PRIVATE if not hasattr(owners[owner], name)]
    assert not missing, f"Tornado no longer has what server/tornado_socket.py relies on: {missing}"


async def test_unsent_bytes_and_ping_work_on_a_live_socket(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie)
    [socket] = server.service.sockets.values()
    assert socket.unsent_bytes() == 0  # nothing queued on an idle socket
    socket.send_ping()
    await client.assert_nothing_pending()  # a ping is answered by the client, never seen as a message
    assert socket.unsent_bytes() == 0
