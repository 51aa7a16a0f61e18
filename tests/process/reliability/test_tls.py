"""TLS (issue 6): ``serve --certfile --keyfile`` serves https and wss with a certificate the test
makes, and the session cookie is ``Secure``."""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys

import pytest
from tornado.httpclient import HTTPClientError

from tests.procs import add_users, clean_env, self_signed_certificate

pytestmark = pytest.mark.slow  # real serve processes and TLS handshakes


async def test_serve_with_a_certificate_speaks_https_and_wss_only_with_a_secure_cookie(serve_process, tmp_path):
    cert, key = await self_signed_certificate(tmp_path)
    server = serve_process("--certfile", str(cert), "--keyfile", str(key), ca_certs=cert)
    add_users(server.database, ["alice"])
    await server.start()
    assert "listening on https://127.0.0.1" in server.log.read_text()

    cookie, header = await server.login("alice")
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= attributes, header
    me = await server.fetch("/api/auth/me", headers={"Cookie": f"session={cookie}"})
    assert me.code == 200

    client = await server.connect(cookie)  # wss://, the certificate checked against the test's own CA
    await client.subscribe("positions")
    assert (await client.expect("snapshot"))["data"] == {"positions": []}

    with pytest.raises(ssl.SSLCertVerificationError):  # a client that doesn't trust the certificate
        await server.http.fetch(server.url + "/api/health")
    with pytest.raises((HTTPClientError, ConnectionError, OSError)):  # plain http on the TLS port
        await server.http.fetch(server.url.replace("https:", "http:") + "/api/health", request_timeout=5)

    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert await client.closed() == (1001, "Server shutting down")
    assert await server.wait(10) == 0
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("args, key", [
    (["--certfile", "cert.pem"], "server.keyfile"),
    (["--keyfile", "key.pem"], "server.certfile"),
    (["--certfile", "missing.pem", "--keyfile", "key.pem"], "server.certfile"),
    (["--certfile", "key.pem", "--keyfile", "cert.pem"], "server.certfile"),  # swapped: they don't load
])
async def test_a_bad_tls_setting_stops_serve_with_one_line_naming_the_key(tmp_path, args, key):
    await self_signed_certificate(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "serve", "--port", "1", "--feed", "none",
        "--database", str(tmp_path / "db.sqlite3"), *args, cwd=tmp_path, env=clean_env(),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: invalid setting {key}: "), lines
