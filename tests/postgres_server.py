"""A private PostgreSQL server for tests: Debian's binaries (``/usr/lib/postgresql/*/bin``), a
cluster made by ``initdb`` in a temporary folder, listening on a free port on 127.0.0.1 only
(no Unix socket), trust authentication, no fsync. Like tests/redis_server.py.

``initdb`` and ``postgres`` refuse to run as root: under root (CI) they run as the ``postgres``
user the Debian package creates (``runuser -u postgres``), in a folder that user owns.

Use the ``postgres_server`` fixture (a server per test module is plenty: each test gets its own
database from ``fresh_database``) or ``PostgresServer`` directly::

    server = PostgresServer().start()
    url = server.fresh_database()     # postgresql://postgres@127.0.0.1:<port>/<new db>
    server.stop()
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from tests import markers
from tests.ready import await_ready
from tests.redis_server import free_port

START_TIMEOUT = 30.0  # seconds for a fresh cluster to accept connections
RUN_AS = "postgres"   # the Debian package's user, when we are root


def binaries() -> Path:
    """The newest installed PostgreSQL's bin folder (raises if there is none: CI installs it)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
        return Path(on_path).parent
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="pws-postgres-"))
        self.data = self.directory / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._as_root = os.geteuid() == 0
        if self._as_root:
            account = pwd.getpwnam(RUN_AS)
            os.chown(self.directory, account.pw_uid, account.pw_gid)

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", RUN_AS, "--", *args] if self._as_root else list(args)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PostgresServer":
        """Create the cluster (first time), start it; returns once it says it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return self
        markers.require("postgres", "a PostgreSQL server")
        bin_dir = binaries()
        if not self.data.exists():
            subprocess.run(self._command(str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                                         "-A", "trust", "-E", "UTF8", "--no-sync"),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.process = subprocess.Popen(
            self._command(str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                          "-h", "127.0.0.1", "-k", "", "-c", "fsync=off", "-c", "synchronous_commit=off",
                          "-c", "full_page_writes=off", "-c", "max_connections=200"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        try:
            await_ready(self.process, b"database system is ready to accept connections",
                        self.directory / "postgres.log", START_TIMEOUT, f"postgres on port {self.port}")
        except RuntimeError:
            self.stop()
            raise
        return self

    def fresh_database(self) -> str:
        """A new empty database on this server; returns its URL."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (SIGINT: fast shutdown, then SIGKILL after 10 s) and remove its folder."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            # runuser passes the signal on to postgres.
            process.send_signal(2)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session (start-up takes ~1-2 s); tests take a
    ``fresh_database()`` each, so none sees another's rows. Import this fixture where it is used."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
