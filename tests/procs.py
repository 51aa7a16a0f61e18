"""Real ``portfolio-ws serve`` processes for reliability tests: users made directly in the database
(a fast hash), a self-signed certificate made by the test, readiness polled, always killed at the end."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import ujson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from portfolio_ws.auth.sessions import SessionLifetime
from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
from portfolio_ws.auth.users import UserStore
from tests import ROOT
from tests.harness import FAST_HASHER, PASSWORD, Client



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # type: ignore[no-any-return]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PORTFOLIO_WS_") and k != "ENABLE_REALTIME_PORTFOLIO"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def add_users(database: str, names: list[str]) -> dict[str, str]:
    """Create users (fast argon2 parameters: the server verifies with those in the hash); name -> user_id."""
    store = UserStore(database, hasher=FAST_HASHER)
    try:
        return {name: store.add(name, PASSWORD).user_id for name in names}
    finally:
        store.close()


async def add_sessions(database: str, user_ids: list[str]) -> list[str]:
    """A session for each user, made in the database as a login would (a day's lifetime): a test
    opening many sockets skips the logins, each of which re-hashes ``add_users``' cheap hash with the
    server's argon2 parameters (64 MiB, all cores) - the work a login storm costs, not the one tested."""
    store = SQLiteSessionStore(database, SessionLifetime(86400.0, 86400.0))
    try:
        return [await store.create(user_id, time.time()) for user_id in user_ids]
    finally:
        await store.close()


async def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 valid for a day, and its key (PEM): the openssl CLI, else the
    ``cryptography`` package."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if shutil.which("openssl"):
        proc = await asyncio.create_subprocess_exec(
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        return cert, key
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


class ServeProcess:
    """``python -m cli serve`` on a free loopback port; output to a file (no pipe can block it)."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 ca_certs: Path | None = None, port: int | None = None, nofile: int | None = None) -> None:
        self.tmp_path = tmp_path
        self.database = str(tmp_path / "serve.sqlite3")
        self.port = port or free_port()
        self.args = args
        self.env = env or {}
        self.ca_certs = str(ca_certs) if ca_certs else None
        self.nofile = nofile  # the process's file limit, soft and hard (None: inherited)
        scheme = "https" if ca_certs else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if ca_certs else 'ws'}://127.0.0.1:{self.port}/ws/portfolio"
        self.log = tmp_path / f"serve-{self.port}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.http = AsyncHTTPClient(force_instance=True)

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "serve", "--port", str(self.port), "--feed", "none",
                "--database", self.database, *self.args, cwd=self.tmp_path, env=clean_env(**self.env),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=None if self.nofile is None else self._limit_files)
        deadline = time.monotonic() + 30
        while True:  # poll /api/health (bounded), failing early if the process died
            if self.proc.returncode is not None:
                pytest.fail(f"serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                response = await self.fetch("/api/health", request_timeout=2)
                assert response.code == 200
                return
            except (ConnectionError, HTTPClientError, OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve not ready after 30 s:\n{self.log.read_text()}")
            await asyncio.sleep(0.05)

    def _limit_files(self) -> None:  # in the child, before exec
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def fetch(self, path: str, **kwargs: Any) -> Any:
        return await self.http.fetch(HTTPRequest(self.url + path, ca_certs=self.ca_certs, **kwargs))

    async def login(self, username: str, timeout: float = 20.0) -> tuple[str, str]:
        """(session id, the whole Set-Cookie header)."""
        response = await self.fetch("/api/auth/login", method="POST", headers={"Content-Type": "application/json"},
                                    body=ujson.dumps({"username": username, "password": PASSWORD}),
                                    request_timeout=timeout)
        header = response.headers["Set-Cookie"]
        return header.split(";", 1)[0].split("=", 1)[1], header

    async def connect(self, cookie: str) -> Client:
        request = HTTPRequest(self.ws_url, headers={"Cookie": f"session={cookie}"}, ca_certs=self.ca_certs)
        client = Client(await websocket_connect(request))
        await client.expect("info", "CONNECTED")
        return client

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
def serve_process(io_loop: Any, tmp_path: Path) -> Any:
    processes: list[ServeProcess] = []

    def factory(*args: str, **kwargs: Any) -> ServeProcess:
        process = ServeProcess(tmp_path, *args, **kwargs)
        processes.append(process)
        return process

    yield factory
    for process in processes:
        io_loop.run_sync(process.stop, timeout=10)
