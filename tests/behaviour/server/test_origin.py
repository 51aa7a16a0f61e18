"""The ``Origin`` check on the WebSocket upgrade (PROTOCOL.md, Connect): an Origin not in the
allowlist gets HTTP 403 and no WebSocket at all; no Origin (non-browser clients) is allowed."""

from __future__ import annotations

from typing import Any

import pytest
from tornado.httpclient import HTTPClientError


async def refused(server: Any, origin: str, cookie: str | None, **headers: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await server.connect(cookie, headers={"Origin": origin, **headers}, expect_connected=False)
    assert info.value.code == 403, (origin, info.value)


async def test_no_origin_header_is_allowed(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie)  # harness clients send no Origin
    await client.assert_nothing_pending()


async def test_default_allows_only_the_servers_own_host(make_server):
    server = await make_server()
    _, cookie = await server.user_session("alice")
    own = f"http://127.0.0.1:{server.port}"
    client = await server.connect(cookie, headers={"Origin": own})
    await client.assert_nothing_pending()
    browser = await server.connect(cookie, headers={"Origin": own, "Sec-Fetch-Site": "same-origin"})
    await browser.assert_nothing_pending()
    for origin in ("https://evil.example", f"http://localhost:{server.port}",
                   f"http://127.0.0.1:{server.port + 1}", "null"):
        await refused(server, origin, cookie)
    await refused(server, "https://evil.example", None)  # refused before authentication matters
    await refused(server, "https://evil.example", cookie, **{"Sec-Fetch-Site": "cross-site"})
    assert len(server.service.sockets) == 2  # no WebSocket was ever opened for a refused upgrade


async def test_a_configured_allowlist_admits_exactly_its_origins(make_server):
    server = await make_server(server__allowed_origins=("https://app.example",))
    _, cookie = await server.user_session("alice")
    client = await server.connect(cookie, headers={"Origin": "https://app.example"})
    await client.assert_nothing_pending()
    for origin in ("http://app.example", "https://app.example:8443", "https://evil.app.example",
                   "https://app.example.evil", f"http://127.0.0.1:{server.port}"):
        await refused(server, origin, cookie)
    # The server's own host is not implicitly allowed once an allowlist is configured.
    await refused(server, f"http://127.0.0.1:{server.port}", cookie, **{"Sec-Fetch-Site": "same-origin"})
    assert len(server.service.sockets) == 1
