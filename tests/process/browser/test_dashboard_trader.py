"""The dashboard as a day trader keeps it open, under the simulator, at desktop (1400x900) and phone
(390x844) sizes: the equity chart shows the session from the open however late the page opens,
money has thousands separators, one clock (the market's, with its zone), nothing wider than the
screen. ``DASHBOARD_SCREENSHOTS=docs`` also writes the README's screenshots there."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from portfolio_ws.auth.stores import open_user_store
from portfolio_ws.settings import SimulatorSettings
from simulator.feed import SimulatorFeed
from tests import ROOT
from tests.harness import FAST_HASHER, PASSWORD, start_server
from tests.process.browser.conftest import WAIT_MS, new_page
from tests.process.browser.dashboard import log_in

expect.set_options(timeout=WAIT_MS)

OPEN = "2026-01-05T14:30:00.000Z"          # Monday 5 January 2026, 09:30 New York
SESSION_MINUTES = 95                       # the page is opened at 11:05, an hour and a half in
MIN_POINTS = 60                            # a point a minute with an account update (2-6 a minute)
GROUPED = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$")


@pytest.fixture
def market(io_loop: Any, tmp_path: Path) -> Any:
    """A server whose simulator started at the open; its clock jumps SESSION_MINUTES ahead."""
    database = str(tmp_path / "test.sqlite3")
    users = open_user_store(database, hasher=FAST_HASHER)
    trader = users.add("trader", PASSWORD)
    users.close()
    real = [time.time()]
    feed = SimulatorFeed([trader.user_id], SimulatorSettings(seed=3, start="2026-01-05T09:30", users=1),
                         clock=lambda: real[0])

    async def start() -> Any:
        server = await start_server(tmp_path, {"auth.database": database, "streaming.batch_window_ms": 250},
                                    feed=feed, seq_base=None)
        real[0] += SESSION_MINUTES * 60          # the feed's next step generates the morning at once
        try:  # the equity history takes each event as the service does (Service.when re-checks after it)
            await server.until(lambda: len(server.parts.equity.points(trader.user_id)) >= MIN_POINTS, 20)
        except asyncio.TimeoutError:
            raise AssertionError("the simulated morning was not generated") from None
        return server

    server = io_loop.run_sync(start, timeout=30)
    yield server
    io_loop.run_sync(server.stop, timeout=10)


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_a_trader_s_dashboard(browser: Any, market: Any, shoot: Any, size: str) -> None:
    viewport = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}[size]
    errors: list[str] = []
    page = await new_page(await browser.new_context(viewport=viewport, device_scale_factor=1), errors)
    await log_in(page, market, "trader")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#positions tbody tr").first).to_be_visible()

    # The chart: the session from the open, though the page opened an hour and a half later.
    chart = page.locator("#equity-chart")
    await expect(chart).to_have_attribute("data-first", OPEN)
    await expect(chart).to_have_attribute("data-open", OPEN)
    assert int(await chart.get_attribute("data-points") or 0) >= MIN_POINTS
    first_x = await page.evaluate("Number(document.querySelector('#equity-chart polyline')"
                                  ".getAttribute('points').split(' ')[0].split(',')[0])")
    assert first_x == 0
    assert await page.locator("#chart-start").text_content() == "09:30"
    assert await page.locator("#chart-end").text_content() == "16:00"

    # Money with thousands separators, exactly the server's digits.
    account = await page.evaluate("window.dashboard.stream.portfolio.account")
    equity_text = await page.locator("#acct-equity").text_content()
    assert equity_text and GROUPED.match(equity_text) and equity_text.replace(",", "") == account["equity"]
    assert "," in equity_text                                    # the simulated accounts hold > $1,000
    values = await page.locator('#positions [data-field="marketValue"]').all_text_contents()
    assert values and all(GROUPED.match(v) for v in values), values
    assert any("," in v for v in values)

    # One clock: the market's, in New York time, marked once; no other time on the page is the
    # wall clock (the simulated 11:05 is hours away from it).
    updated = await page.locator("#last-update").text_content()
    assert updated and re.fullmatch(r"1[01]:\d\d:\d\d ET", updated), updated
    header = await page.locator("header").inner_text()
    assert header.count(" ET") == 1
    times = await page.evaluate("""() => [...document.querySelectorAll('#orders [data-field="submittedAt"], #trades time')]
                                     .map(n => n.textContent)""")
    assert times and all(re.fullmatch(r"(09|10|11):\d\d:\d\d", t) for t in times), times

    # Nothing wider than the screen, nothing cut off inside a card, the header in at most two lines.
    overflow = await page.evaluate("""() => ({
      page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      cards: [...document.querySelectorAll('.card, .scroll')].map(c => c.scrollWidth - c.clientWidth)
                                                          .filter(d => d > 0),
      header: document.querySelector('header').getBoundingClientRect().height,
    })""")
    assert overflow["page"] <= 0 and overflow["cards"] == [], overflow
    assert overflow["header"] <= 90, overflow

    await shoot(page, size)
    target = os.environ.get("DASHBOARD_SCREENSHOTS")
    if target:
        name = "dashboard.png" if size == "desktop" else "dashboard-phone.png"
        await page.screenshot(path=str(ROOT / target / name), full_page=size == "phone")
    assert errors == []
