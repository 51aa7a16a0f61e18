"""Browser tests: the real server on a real socket, driven through Debian's Chromium by Playwright.

Playwright's async API runs on the test's own event loop (the pytest-tornasync ``io_loop``), so a
test can publish events through the harness and wait on the page in one coroutine. Chromium is
``/usr/bin/chromium`` (``$CHROMIUM`` overrides); Playwright never downloads a browser here. Without
Chromium the tests are skipped, unless ``PORTFOLIO_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where they fail. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from tests import ROOT
from tests.harness import TestServer, start_server

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
WAIT_MS = 10_000  # the longest any page condition is waited for

# Fast client timings for tests (the defaults are seconds to tens of seconds).
FAST_OPTIONS = {"baseDelayMs": 100, "maxDelayMs": 500, "slowDownDelayMs": 200, "pollIntervalMs": 300,
                "socketRetryMs": 1000, "connectTimeoutMs": 3000}


def _missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("PORTFOLIO_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"browser tests required but {reason}")
    here = Path(__file__).resolve().parent
    skipped = 0
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=reason))
            skipped += 1
    config.stash[SKIPPED] = (skipped, reason)


SKIPPED = pytest.StashKey[tuple[int, str]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """One line at the end of the run when the browser tests were skipped (not buried in -rs)."""
    skipped, reason = config.stash.get(SKIPPED, (0, ""))
    if skipped:
        terminalreporter.write_line(
            f"browser tests: {skipped} skipped, {reason.split(' (', 1)[0]}. Install Chromium (apt-get install chromium, or "
            f"set CHROMIUM=/path/to/chromium) to run them; PORTFOLIO_REQUIRE_BROWSER=1 (CI) makes this an error.",
            yellow=True, bold=True)


@pytest.fixture
def browser(io_loop: Any) -> Any:
    from playwright.async_api import async_playwright

    async def launch() -> tuple[Any, Any]:
        pw = await async_playwright().start()
        return pw, await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)

    pw, chromium = io_loop.run_sync(launch, timeout=30)
    yield chromium

    async def close() -> None:
        await chromium.close()
        await pw.stop()

    io_loop.run_sync(close, timeout=30)


class Servers:
    """Starts servers that share one database (users and sessions survive a restart)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.running: list[TestServer] = []

    async def start(self, port: int = 0, **overrides: Any) -> TestServer:
        # seq_base=None: the production offset base, so a restarted server's offsets are higher.
        server = await start_server(self.tmp_path, {k.replace("__", "."): v for k, v in overrides.items()},
                                    seq_base=None, port=port)
        self.running.append(server)
        return server

    async def stop(self, server: TestServer) -> None:
        self.running.remove(server)
        await server.stop()


@pytest.fixture
def servers(io_loop: Any, tmp_path: Path) -> Any:
    pool = Servers(tmp_path)
    yield pool
    for server in list(pool.running):
        io_loop.run_sync(lambda: pool.stop(server), timeout=10)


@pytest.fixture
def shoot(request: Any) -> Callable[[Any, str], Awaitable[None]]:
    """``await shoot(page, "step")`` saves test-artifacts/browser/<test>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    async def take(page: Any, step: str) -> None:
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{step}.png"), full_page=True)

    return take


async def new_page(context: Any, errors: list[str] | None = None, **options: Any) -> Any:
    """A page whose portfolio stream uses FAST_OPTIONS (plus ``options``; None = the library's default);
    page errors are collected."""
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    merged = {k: v for k, v in {**FAST_OPTIONS, **options}.items() if v is not None}
    await page.add_init_script(f"window.PORTFOLIO_STREAM_OPTIONS = {json.dumps(merged)};")
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: errors.append(f"console.error: {msg.text}")
                if msg.type == "error" and not NETWORK_NOISE.search(msg.text) else None)
    return page


# What Chromium itself logs for refused sockets and non-2xx fetches: expected in these tests.
NETWORK_NOISE = re.compile(r"Failed to load resource|WebSocket connection to .* failed|net::ERR_")
