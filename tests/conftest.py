"""Shared fixtures and the markers a test gets from what it uses.

``make_server`` starts a real portfolio-ws server on a free loopback port; ``empty_environment``
runs a test in an empty directory with none of the service's variables set.

Markers (registered in setup.cfg, strict): ``browser`` (drives Chromium), ``redis`` (starts a
redis-server), ``postgres`` (starts a PostgreSQL server), ``slow`` (load, soak, long property runs:
over ~0.5 s on a shared 2-core machine). The first three are applied here from what a test uses, so a
new test is selected right without remembering to mark it; ``slow`` is marked by hand, from
``pytest --durations``. The quick selection the README names excludes all four.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from portfolio_ws.config import ENV_PREFIX
from tests import markers
from tests.harness import TestServer, start_server
from tests.procs import serve_process  # noqa: F401  (a fixture: a real serve process)

TESTS = Path(__file__).resolve().parent
SERVICES = ("redis", "postgres")


def used_by(item: Any) -> set[str]:
    """The words that say what a test uses: its folders, its module, its fixtures, its parameter ids."""
    path = Path(str(item.path)).resolve()
    parts = path.relative_to(TESTS).parts if TESTS in path.parents else (path.name,)
    words = {*parts[:-1], Path(parts[-1]).stem, *getattr(item, "fixturenames", ())}
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        words.update(callspec.id.split("-"))
    return words


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        words = used_by(item)
        if "browser" in words:  # the browser/ folder or the ``browser`` fixture
            item.add_marker(pytest.mark.browser)
        for service in SERVICES:  # a fixture, module or parameter named after the service
            if any(service in word for word in words):
                item.add_marker(getattr(pytest.mark, service))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: Any) -> None:
    # RedisServer/PostgresServer refuse to start for a test without the marker, so the quick selection
    # can never come to need a service by accident (a fixture of another name, a direct RedisServer()).
    markers.running = {mark.name for mark in item.iter_markers()}


@pytest.fixture
def make_server(io_loop: Any, tmp_path: Any) -> Any:
    servers: list[TestServer] = []

    async def factory(feed: Any = None, clock: Any = None, **overrides: Any) -> TestServer:
        settings = {key.replace("__", "."): value for key, value in overrides.items()}
        kwargs = {"clock": clock} if clock is not None else {}
        server = await start_server(tmp_path, settings, feed=feed, **kwargs)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        io_loop.run_sync(server.stop, timeout=10)


@pytest.fixture
def empty_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty directory (no ./config.yaml) and no PORTFOLIO_WS_* (or ENABLE_REALTIME_PORTFOLIO)
    variables leaking in from the shell: the command or the settings see only what the test sets."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("ENABLE_REALTIME_PORTFOLIO", raising=False)
